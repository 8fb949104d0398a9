import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { RegistryAddressPolicy } from './address-policy.js';
import { formatSize, ImageLimitError } from './limits.js';

const MAX_REDIRECTS = 10;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const NULL_BODY = new Set([101, 204, 205, 304]);

export class RedirectError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'RedirectError';
  }
}

/**
 * GET over http(s) for registry traffic. Every hop (the first request and each redirect) is checked
 * by the address policy and connected to the very address that was checked. Credentials stay with
 * the host they were meant for: a redirect to another host drops the Authorization header (blob
 * downloads are often redirected to a CDN with a signed URL).
 */
export async function registryGet(policy: RegistryAddressPolicy, url: URL, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
  let current = url;
  let sendHeaders = headers;
  for (let hop = 0; ; hop++) {
    const response = await getOnce(policy, current, sendHeaders, signal);
    const location = response.headers.get('location');
    if (!REDIRECTS.has(response.status) || !location) return response;
    await response.body?.cancel();
    if (hop >= MAX_REDIRECTS) throw new RedirectError(`too many redirects from ${url.host}`);
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      throw new RedirectError(`HTTP ${response.status} with an invalid redirect location`);
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new RedirectError(`HTTP ${response.status} redirects to an unsupported scheme`);
    if (next.host !== current.host) sendHeaders = withoutAuthorization(sendHeaders);
    current = next;
  }
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
}

async function getOnce(policy: RegistryAddressPolicy, url: URL, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RedirectError(`unsupported scheme ${url.protocol}`);
  signal.throwIfAborted();
  const { address, family } = await policy.addressFor(url);
  // Hand the connection exactly the checked address: no second resolution, no rebinding window.
  const lookup: LookupFunction = (_hostname, options, callback) => {
    if (options.all) (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address, family }]);
    else callback(null, address, family);
  };
  const transport = url.protocol === 'https:' ? https : http;
  return new Promise<Response>((resolve, reject) => {
    const request = transport.request(url, {
      method: 'GET',
      headers: { 'user-agent': 'sandfleet-executor', ...headers },
      lookup,
      // Node skips `lookup` for IP literals; the literal itself was what the policy checked.
      signal,
      agent: false,
    }, (res) => {
      const status = res.statusCode ?? 0;
      const responseHeaders = new Headers();
      for (const [key, value] of Object.entries(res.headers)) {
        if (value === undefined) continue;
        for (const v of Array.isArray(value) ? value : [value]) responseHeaders.append(key, v);
      }
      if (status < 200 || status > 599) {
        res.destroy();
        reject(new Error(`unexpected HTTP status ${status}`));
        return;
      }
      const body = NULL_BODY.has(status) ? null : (Readable.toWeb(res) as unknown as WebReadableStream<Uint8Array>);
      if (!body) res.resume();
      resolve(new Response(body as unknown as ConstructorParameters<typeof Response>[0], { status, headers: responseHeaders }));
    });
    request.on('error', reject);
    request.end();
  });
}

/** Reads a response body of at most `limit` bytes; a larger one fails without being kept. */
export async function readLimited(response: Response, limit: number, what: string): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    await response.body?.cancel();
    throw new ImageLimitError(`${what} is larger than the ${formatSize(limit)} limit`);
  }
  if (!response.body) return Buffer.alloc(0);
  const reader = response.body.getReader();
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw new ImageLimitError(`${what} is larger than the ${formatSize(limit)} limit`);
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks, total);
}
