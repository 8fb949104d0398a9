import crypto from 'node:crypto';

/** The fields of a Google service-account key file that the token exchange needs. */
export interface ServiceAccountKey {
  client_email: string;
  private_key: string;
  private_key_id?: string | undefined;
  token_uri: string;
}

export const DEFAULT_TOKEN_URI = 'https://oauth2.googleapis.com/token';
export const MONITORING_WRITE_SCOPE = 'https://www.googleapis.com/auth/monitoring.write';

export class ServiceAccountError extends Error {
  override name = 'ServiceAccountError';
}

/** Parses a service-account JSON key; throws ServiceAccountError naming what is missing. */
export function parseServiceAccountKey(json: string): ServiceAccountKey {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new ServiceAccountError(`the service-account key is not valid JSON: ${(err as Error).message}`);
  }
  const key = value as Record<string, unknown>;
  if (typeof key !== 'object' || key === null) throw new ServiceAccountError('the service-account key is not a JSON object');
  if (key.type !== undefined && key.type !== 'service_account') throw new ServiceAccountError(`the key's type is "${String(key.type)}", not "service_account"`);
  for (const field of ['client_email', 'private_key'] as const) {
    if (typeof key[field] !== 'string' || key[field] === '') throw new ServiceAccountError(`the service-account key has no ${field}`);
  }
  try {
    crypto.createPrivateKey(key.private_key as string);
  } catch (err) {
    throw new ServiceAccountError(`the service-account key's private_key is not a PEM private key: ${(err as Error).message}`);
  }
  const tokenUri = typeof key.token_uri === 'string' && key.token_uri !== '' ? key.token_uri : DEFAULT_TOKEN_URI;
  if (!/^https?:\/\//.test(tokenUri)) throw new ServiceAccountError(`the service-account key's token_uri is not an http(s) URL`);
  return {
    client_email: key.client_email as string,
    private_key: key.private_key as string,
    private_key_id: typeof key.private_key_id === 'string' ? key.private_key_id : undefined,
    token_uri: tokenUri,
  };
}

const base64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

/** The RS256-signed JWT a service account presents to its token_uri (RFC 7523). */
export function signAssertion(key: ServiceAccountKey, scope: string, nowSeconds = Math.floor(Date.now() / 1000)): string {
  const header = { alg: 'RS256', typ: 'JWT', ...(key.private_key_id ? { kid: key.private_key_id } : {}) };
  const claims = { iss: key.client_email, scope, aud: key.token_uri, iat: nowSeconds, exp: nowSeconds + 3600 };
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const signature = crypto.sign('RSA-SHA256', Buffer.from(signingInput), key.private_key);
  return `${signingInput}.${base64url(signature)}`;
}

/**
 * OAuth access tokens for a service account, exchanged at the key's own token_uri (as Go's
 * google.CredentialsFromJSON does) and reused until a minute before they expire.
 */
export class ServiceAccountTokenSource {
  private cached: { token: string; expiresAt: number } | undefined;
  private pending: Promise<string> | undefined;

  constructor(
    private readonly key: ServiceAccountKey,
    private readonly scope = MONITORING_WRITE_SCOPE,
  ) {}

  async accessToken(): Promise<string> {
    if (this.cached && Date.now() < this.cached.expiresAt - 60_000) return this.cached.token;
    this.pending ??= this.exchange().finally(() => (this.pending = undefined));
    return this.pending;
  }

  private async exchange(): Promise<string> {
    const body = new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: signAssertion(this.key, this.scope) });
    const res = await fetch(this.key.token_uri, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (!res.ok) throw new ServiceAccountError(`token exchange at ${this.key.token_uri} answered ${res.status}: ${text.slice(0, 300)}`);
    let answer: { access_token?: unknown; expires_in?: unknown };
    try {
      answer = JSON.parse(text);
    } catch {
      throw new ServiceAccountError(`token exchange at ${this.key.token_uri} answered something other than JSON`);
    }
    if (typeof answer.access_token !== 'string' || answer.access_token === '') throw new ServiceAccountError(`token exchange at ${this.key.token_uri} returned no access_token`);
    const expiresIn = typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in : 3600;
    this.cached = { token: answer.access_token, expiresAt: Date.now() + expiresIn * 1000 };
    return answer.access_token;
  }
}
