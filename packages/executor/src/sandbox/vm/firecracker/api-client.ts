import http from 'node:http';
import { SandfleetError } from '@sandfleet/protocol';
import { apiSchema, type HttpMethod } from './api-schema.js';

/** Firecracker answered a request with an error; `faultMessage` is its own explanation. */
export class FirecrackerApiError extends SandfleetError {
  constructor(readonly method: string, readonly path: string, readonly status: number, readonly faultMessage: string) {
    super(`firecracker rejected ${method} ${path} (HTTP ${status}): ${faultMessage}`);
  }
}

/** The driver was about to send a request its own schema copy rejects: a bug here, never sent. */
export class FirecrackerRequestInvalidError extends SandfleetError {
  constructor(readonly method: string, readonly path: string, readonly problems: string[]) {
    super(`refusing to send ${method} ${path}: it does not match Firecracker's API schema: ${problems.join('; ')}`);
  }
}

/** The API socket could not be reached or answered garbage. */
export class FirecrackerTransportError extends SandfleetError {}

/** Firecracker's answers are small JSON documents; anything larger is not Firecracker. */
export const MAX_RESPONSE_BYTES = 1024 * 1024;
const REQUEST_TIMEOUT_MS = 10_000;

/** Firecracker's API over its unix socket. Every request is checked against the schema first. */
export class FirecrackerApiClient {
  constructor(readonly socketPath: string, private readonly timeoutMs = REQUEST_TIMEOUT_MS) {}

  async put(path: string, body: unknown): Promise<void> {
    await this.request('PUT', path, body);
  }

  async patch(path: string, body: unknown): Promise<void> {
    await this.request('PATCH', path, body);
  }

  async get<T>(path: string): Promise<T> {
    return (await this.request('GET', path, undefined)) as T;
  }

  async request(method: HttpMethod, path: string, body: unknown): Promise<unknown> {
    const { problems } = apiSchema().validate(method, path, body);
    if (problems.length > 0) throw new FirecrackerRequestInvalidError(method, path, problems);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const { status, text } = await this.send(method, path, payload);
    if (status >= 200 && status < 300) return text.length === 0 ? undefined : parseJson(text, method, path);
    throw new FirecrackerApiError(method, path, status, faultMessage(text));
  }

  private send(method: string, path: string, payload: Buffer | undefined): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request({
        socketPath: this.socketPath,
        method,
        path,
        headers: { Accept: 'application/json', ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}) },
        timeout: this.timeoutMs,
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy(new FirecrackerTransportError(`${method} ${path}: the answer exceeds ${MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new FirecrackerTransportError(`${method} ${path}: no answer within ${this.timeoutMs} ms`)));
      req.on('error', (err) => reject(err instanceof SandfleetError ? err : new FirecrackerTransportError(`${method} ${path} on ${this.socketPath}: ${err.message}`)));
      req.end(payload);
    });
  }
}

function parseJson(text: string, method: string, path: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new FirecrackerTransportError(`${method} ${path}: the answer is not JSON: ${text.slice(0, 200)}`);
  }
}

/** Firecracker's error body is `{"fault_message": "..."}`; keep a bounded excerpt of anything else. */
function faultMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { fault_message?: unknown };
    if (typeof parsed.fault_message === 'string') return parsed.fault_message.slice(0, 2000);
  } catch {
    // not JSON: fall through
  }
  return text.trim().slice(0, 500) || '(empty answer)';
}
