import type { MiddlewareHandler } from 'hono';
import { SandfleetError } from '@sandfleet/protocol';

/** A request body grew past the limit while a handler read it. */
export class BodyTooLargeError extends SandfleetError {
  constructor(readonly maxBytes: number) {
    super(`request body larger than ${maxBytes} bytes`);
  }
}

/**
 * Limits request bodies without reading them: a declared length past `maxBytes` is refused at
 * once (413); a body of unknown length (chunked) is counted as the handler reads it, which errors
 * with BodyTooLargeError past the limit. Nothing is read here, so a request is authenticated from
 * its headers before any of its body is taken in.
 */
export function bodyLimit(maxBytes: number, tooLarge: MiddlewareHandler): MiddlewareHandler {
  return async (c, next) => {
    const raw = c.req.raw;
    if (!raw.body) return next();
    const declared = raw.headers.get('content-length');
    if (declared !== null && !raw.headers.has('transfer-encoding')) {
      return Number(declared) > maxBytes ? tooLarge(c, next) : next();
    }
    c.req.raw = new Request(raw, { body: raw.body.pipeThrough(countingStream(maxBytes)), duplex: 'half' } as RequestInit);
    return next();
  };
}

function countingStream(maxBytes: number): TransformStream<Uint8Array, Uint8Array> {
  let seen = 0;
  return new TransformStream({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > maxBytes) controller.error(new BodyTooLargeError(maxBytes));
      else controller.enqueue(chunk);
    },
  });
}
