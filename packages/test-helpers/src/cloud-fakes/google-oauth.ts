import crypto from 'node:crypto';
import { serveLoopback } from './http-server.js';

/**
 * A Google OAuth token endpoint on loopback for one service account: it answers the JWT-bearer
 * grant (RFC 7523) only for an RS256 assertion signed by the account's key, issued by its email,
 * addressed to this endpoint, with a scope and a lifetime Google accepts.
 */
export interface ServiceAccountForTests {
  clientEmail: string;
  privateKeyPem: string;
  publicKey: crypto.KeyObject;
}

export function makeServiceAccount(clientEmail = 'metrics-writer@sandfleet-test.iam.gserviceaccount.com'): ServiceAccountForTests {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { clientEmail, privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey };
}

/** The service-account JSON key file content Google would hand out, pointing at `tokenUri`. */
export function serviceAccountJson(account: ServiceAccountForTests, projectId: string, tokenUri: string, privateKeyPem = account.privateKeyPem): string {
  return JSON.stringify({
    type: 'service_account',
    project_id: projectId,
    private_key_id: 'test-key-1',
    private_key: privateKeyPem,
    client_email: account.clientEmail,
    client_id: '1234567890',
    auth_uri: 'https://accounts.google.com/o/oauth2/auth',
    token_uri: tokenUri,
  });
}

const ACCEPTED_SCOPES = ['https://www.googleapis.com/auth/monitoring.write', 'https://www.googleapis.com/auth/monitoring', 'https://www.googleapis.com/auth/cloud-platform'];

export async function startFakeGoogleOAuth(account: ServiceAccountForTests) {
  const issued = new Set<string>();
  const refusals: string[] = [];
  let tokenUri = '';
  const server = await serveLoopback((req, body, res) => {
    const refuse = (error: string, description: string) => {
      refusals.push(description);
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ error, error_description: description }));
    };
    if (req.method !== 'POST' || req.url !== '/token') return refuse('invalid_request', `${req.method} ${req.url}`);
    if (!String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) return refuse('invalid_request', 'not a form');
    const form = new URLSearchParams(body.toString('utf8'));
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return refuse('unsupported_grant_type', 'Invalid grant_type');
    const problem = checkAssertion(form.get('assertion') ?? '', account, tokenUri);
    if (problem) return refuse('invalid_grant', problem);
    const token = `ya29.test-${crypto.randomBytes(24).toString('base64url')}`;
    issued.add(token);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ access_token: token, expires_in: 3599, token_type: 'Bearer' }));
  });
  tokenUri = `${server.url}/token`;
  return {
    tokenUri,
    refusals,
    /** True for a token this endpoint issued. */
    isValidToken: (token: string) => issued.has(token),
    issuedCount: () => issued.size,
    close: server.close,
  };
}
export type FakeGoogleOAuth = Awaited<ReturnType<typeof startFakeGoogleOAuth>>;

function checkAssertion(assertion: string, account: ServiceAccountForTests, tokenUri: string): string | undefined {
  const parts = assertion.split('.');
  if (parts.length !== 3) return 'Invalid JWT: not three parts';
  const [headerPart, claimsPart, signaturePart] = parts as [string, string, string];
  let header: Record<string, unknown>;
  let claims: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(claimsPart, 'base64url').toString('utf8'));
  } catch {
    return 'Invalid JWT: not JSON';
  }
  if (header.alg !== 'RS256') return `Invalid JWT: alg ${String(header.alg)}`;
  const valid = crypto.verify('RSA-SHA256', Buffer.from(`${headerPart}.${claimsPart}`), account.publicKey, Buffer.from(signaturePart, 'base64url'));
  if (!valid) return 'Invalid JWT Signature.';
  if (claims.iss !== account.clientEmail) return 'Invalid JWT: unknown issuer';
  if (claims.aud !== tokenUri) return 'Invalid JWT: Token must be addressed to the token endpoint';
  const scopes = typeof claims.scope === 'string' ? claims.scope.split(' ') : [];
  if (!scopes.some((scope) => ACCEPTED_SCOPES.includes(scope))) return 'Invalid JWT: no scope that allows writing metrics';
  const now = Math.floor(Date.now() / 1000);
  if (typeof claims.iat !== 'number' || typeof claims.exp !== 'number') return 'Invalid JWT: iat and exp are required';
  if (claims.exp - claims.iat > 3600) return 'Invalid JWT: lifetime longer than one hour';
  if (claims.iat > now + 300 || claims.exp < now - 300) return 'Invalid JWT: Token must be a short-lived token and in a reasonable timeframe';
  return undefined;
}
