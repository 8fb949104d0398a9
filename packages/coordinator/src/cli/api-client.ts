import { SandfleetError } from '@sandfleet/protocol';

/** A small client of the user API for the `sandfleet` CLI. */
export class ApiError extends SandfleetError {
  /** `answer`: the error answer's JSON (`{"error": …}` plus whatever else it names), when it was JSON. */
  constructor(readonly status: number, message: string, readonly answer?: Record<string, unknown>) {
    super(message);
  }
}

/** A request body sent as is, with its content type (JSON bodies are given as values). */
export interface RawBody {
  contentType: string;
  text: string;
}

export class ApiClient {
  constructor(private readonly baseUrl: string, private readonly token: string | undefined) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const raw = body === undefined ? undefined : { contentType: 'application/json', text: JSON.stringify(body) };
    return this.requestRaw<T>(method, path, raw);
  }

  /** As request, with a body that is not JSON (NDJSON, say). */
  async requestRaw<T>(method: string, path: string, body?: RawBody): Promise<T> {
    const res = await this.fetch(method, path, body);
    const text = await res.text();
    if (!res.ok) {
      let message = text;
      let answer: Record<string, unknown> | undefined;
      try {
        answer = JSON.parse(text) as Record<string, unknown>;
        message = typeof answer.error === 'string' ? answer.error : text;
      } catch {
        // not JSON: keep the text
      }
      throw new ApiError(res.status, `${method} ${path}: ${res.status} ${message}`.trim(), answer);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** Hands a streamed answer (a log's text) to `onChunk` piece by piece, waiting for each. */
  async download(path: string, onChunk: (chunk: Uint8Array) => Promise<void>): Promise<void> {
    const res = await this.fetch('GET', path);
    if (!res.ok || !res.body) throw new ApiError(res.status, `GET ${path}: ${res.status} ${await res.text()}`);
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) await onChunk(chunk);
  }

  /** Follows a Server-Sent-Events stream, calling `onEvent` for each event until it ends. */
  async stream(path: string, onEvent: (event: string, data: string) => void, signal?: AbortSignal): Promise<void> {
    const res = await this.fetch('GET', path, undefined, signal);
    if (!res.ok || !res.body) throw new ApiError(res.status, `GET ${path}: ${res.status} ${await res.text()}`);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith('event:')) event = line.slice(6).trim();
          else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
        }
        onEvent(event, data.join('\n'));
      }
    }
  }

  private async fetch(method: string, path: string, body?: RawBody, signal?: AbortSignal): Promise<Response> {
    if (!this.token) throw new ApiError(0, 'no admin token: set SANDFLEET_ADMIN_TOKEN or pass --token-file <file>');
    try {
      return await fetch(new URL(path, this.baseUrl), {
        method,
        headers: { Authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'Content-Type': body.contentType } : {}) },
        ...(body !== undefined ? { body: body.text } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      throw new ApiError(0, `cannot reach the coordinator at ${this.baseUrl}: ${(err as Error).cause ?? (err as Error).message}`);
    }
  }
}
