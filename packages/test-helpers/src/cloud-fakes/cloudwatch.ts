import crypto from 'node:crypto';
import type http from 'node:http';
import { serveLoopback } from './http-server.js';

/**
 * A CloudWatch endpoint on loopback that checks what AWS checks for PutMetricData over the AWS
 * JSON 1.0 protocol the v3 SDK speaks: a SigV4 signature recomputed with the test secret (scope,
 * signed headers, clock skew), the X-Amz-Target and content type, and the request's parameters.
 * Accepted calls are recorded; `failWith` makes it answer errors as the real service would.
 */
export interface FakeCloudWatchOptions {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** When set, requests must carry (and sign) this X-Amz-Security-Token. */
  sessionToken?: string;
}

export interface PutMetricDataCall {
  Namespace: string;
  MetricData: MetricDatum[];
  headers: http.IncomingHttpHeaders;
}

export interface MetricDatum {
  MetricName: string;
  Value?: number;
  Unit?: string;
  Dimensions?: { Name: string; Value: string }[];
}

export interface Rejection {
  /** Date.now() when it was refused. */
  at: number;
  status: number;
  type: string;
  message: string;
}

const TARGET = 'GraniteServiceVersion20100801.PutMetricData';
const MAX_SKEW_MS = 15 * 60_000;
const UNITS = new Set([
  'Seconds', 'Microseconds', 'Milliseconds', 'Bytes', 'Kilobytes', 'Megabytes', 'Gigabytes', 'Terabytes', 'Bits', 'Kilobits',
  'Megabits', 'Gigabits', 'Terabits', 'Percent', 'Count', 'Bytes/Second', 'Kilobytes/Second', 'Megabytes/Second',
  'Gigabytes/Second', 'Terabytes/Second', 'Bits/Second', 'Kilobits/Second', 'Megabits/Second', 'Gigabits/Second',
  'Terabits/Second', 'Count/Second', 'None',
]);

export async function startFakeCloudWatch(options: FakeCloudWatchOptions) {
  const calls: PutMetricDataCall[] = [];
  const rejections: Rejection[] = [];
  let forcedFailure: { status: number; type: string } | undefined;
  const server = await serveLoopback((req, body, res) => {
    const reject = (status: number, type: string, message: string) => {
      rejections.push({ at: Date.now(), status, type, message });
      res.writeHead(status, { 'Content-Type': 'application/x-amz-json-1.0', 'x-amzn-RequestId': crypto.randomUUID() });
      res.end(JSON.stringify({ __type: type, message }));
    };
    const authProblem = checkSignature(req, body, options);
    if (authProblem) return reject(authProblem.status, authProblem.type, authProblem.message);
    if (req.method !== 'POST' || req.url !== '/') return reject(404, 'UnknownOperationException', `${req.method} ${req.url}`);
    if (req.headers['content-type'] !== 'application/x-amz-json-1.0') return reject(400, 'SerializationException', `unexpected content type ${req.headers['content-type']}`);
    if (req.headers['x-amz-target'] !== TARGET) return reject(400, 'UnknownOperationException', `unexpected X-Amz-Target ${req.headers['x-amz-target']}`);
    let params: unknown;
    try {
      params = JSON.parse(body.toString('utf8'));
    } catch {
      return reject(400, 'SerializationException', 'body is not JSON');
    }
    const invalid = validatePutMetricData(params);
    if (invalid) return reject(400, 'InvalidParameterValue', invalid);
    if (forcedFailure) return reject(forcedFailure.status, forcedFailure.type, 'failure injected by the test');
    const input = params as Omit<PutMetricDataCall, 'headers'>;
    calls.push({ ...input, headers: req.headers });
    res.writeHead(200, { 'Content-Type': 'application/x-amz-json-1.0', 'x-amzn-RequestId': crypto.randomUUID() });
    res.end('{}');
  });
  return {
    url: server.url,
    calls,
    rejections,
    /** Answer every valid request with this error until called with undefined. */
    failWith(failure: { status: number; type: string } | undefined) {
      forcedFailure = failure;
    },
    close: server.close,
  };
}
export type FakeCloudWatch = Awaited<ReturnType<typeof startFakeCloudWatch>>;

const hmac = (key: crypto.BinaryLike, data: string) => crypto.createHmac('sha256', key).update(data).digest();
const sha256Hex = (data: crypto.BinaryLike) => crypto.createHash('sha256').update(data).digest('hex');

function checkSignature(req: http.IncomingMessage, body: Buffer, options: FakeCloudWatchOptions): Omit<Rejection, 'at'> | undefined {
  const denied = (type: string, message: string): Omit<Rejection, 'at'> => ({ status: type === 'RequestExpired' ? 400 : 403, type, message });
  const authorization = req.headers.authorization ?? '';
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(authorization);
  if (!match) return denied('MissingAuthenticationToken', 'Request is missing Authentication Token');
  const [, keyId, date, region, service, signedHeaderList, signature] = match as unknown as string[];
  if (keyId !== options.accessKeyId) return denied('UnrecognizedClientException', 'The security token included in the request is invalid.');
  if (service !== 'monitoring') return denied('InvalidSignatureException', `Credential should be scoped to correct service: 'monitoring'.`);
  if (region !== options.region) return denied('InvalidSignatureException', `Credential should be scoped to a valid region.`);
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  const when = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!when || amzDate.slice(0, 8) !== date) return denied('IncompleteSignatureException', 'X-Amz-Date is missing or does not match the credential scope');
  const at = Date.UTC(Number(when[1]), Number(when[2]) - 1, Number(when[3]), Number(when[4]), Number(when[5]), Number(when[6]));
  if (Math.abs(Date.now() - at) > MAX_SKEW_MS) return denied('RequestExpired', 'Signature expired: the request time is too far from the server time');
  const signedHeaders = signedHeaderList!.split(';');
  const mustSign = ['host', 'x-amz-date', 'x-amz-target', ...(req.headers['x-amz-security-token'] !== undefined ? ['x-amz-security-token'] : [])];
  for (const name of mustSign) {
    if (!signedHeaders.includes(name)) return denied('InvalidSignatureException', `'${name}' must be a signed header`);
  }
  if (options.sessionToken !== undefined && req.headers['x-amz-security-token'] !== options.sessionToken) {
    return denied('UnrecognizedClientException', 'The security token included in the request is invalid.');
  }
  const contentSha = req.headers['x-amz-content-sha256'];
  if (contentSha !== undefined && contentSha !== sha256Hex(body)) return denied('InvalidSignatureException', "The provided 'x-amz-content-sha256' header does not match what was computed.");
  const canonicalHeaders = signedHeaders.map((name) => `${name}:${headerValue(req, name)}\n`).join('');
  const [pathPart = '/', query = ''] = (req.url ?? '/').split('?');
  const canonicalQuery = query
    .split('&')
    .filter(Boolean)
    .sort()
    .join('&');
  const canonicalRequest = [req.method, pathPart, canonicalQuery, canonicalHeaders, signedHeaderList, sha256Hex(body)].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${options.secretAccessKey}`, date!), region!), service!), 'aws4_request');
  const expected = hmac(signingKey, stringToSign);
  const given = Buffer.from(signature!, 'hex');
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    return denied('InvalidSignatureException', 'The request signature we calculated does not match the signature you provided.');
  }
  return undefined;
}

function headerValue(req: http.IncomingMessage, name: string): string {
  const value = req.headers[name];
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return text.trim().replace(/\s+/g, ' ');
}

/** The PutMetricData constraints of the CloudWatch API reference. */
function validatePutMetricData(params: unknown): string | undefined {
  const p = params as Record<string, unknown>;
  if (typeof p !== 'object' || p === null) return 'the input is not an object';
  if (typeof p.Namespace !== 'string' || p.Namespace.length < 1 || p.Namespace.length > 255) return 'Namespace must be 1 to 255 characters';
  if (p.Namespace.startsWith('AWS/')) return 'The value AWS/ for parameter Namespace is invalid.';
  if (!Array.isArray(p.MetricData) || p.MetricData.length < 1 || p.MetricData.length > 1000) return 'MetricData must hold 1 to 1000 items';
  for (const [i, datum] of (p.MetricData as Record<string, unknown>[]).entries()) {
    const at = `MetricData.member.${i + 1}`;
    if (typeof datum.MetricName !== 'string' || datum.MetricName.length < 1 || datum.MetricName.length > 255) return `${at}.MetricName must be 1 to 255 characters`;
    if (datum.Value !== undefined && (typeof datum.Value !== 'number' || !Number.isFinite(datum.Value))) return `${at}.Value must be a finite number`;
    if (datum.Value === undefined && datum.Values === undefined && datum.StatisticValues === undefined) return `${at} must have a Value, Values or StatisticValues`;
    if (datum.Unit !== undefined && !UNITS.has(datum.Unit as string)) return `${at}.Unit ${JSON.stringify(datum.Unit)} is not a CloudWatch unit`;
    const dimensions = datum.Dimensions ?? [];
    if (!Array.isArray(dimensions) || dimensions.length > 30) return `${at}.Dimensions must be a list of at most 30`;
    for (const d of dimensions as Record<string, unknown>[]) {
      if (typeof d.Name !== 'string' || d.Name.length < 1 || d.Name.length > 255) return `${at}.Dimensions: Name must be 1 to 255 characters`;
      if (typeof d.Value !== 'string' || d.Value.length < 1 || d.Value.length > 1024) return `${at}.Dimensions: Value must be 1 to 1024 characters`;
    }
  }
  return undefined;
}
