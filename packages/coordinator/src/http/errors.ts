import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { SandfleetError } from '@sandfleet/protocol';

/**
 * Sourcegraph's executor API answers errors in two shapes (docs/protocol.md, "Authentication"): plain text with a
 * trailing newline from middleware (`http.Error`), and `{"error": "..."}` from handlers.
 */
export function textError(c: Context, status: ContentfulStatusCode, message: string): Response {
  return c.text(message === '' ? '' : `${message}\n`, status);
}

export function jsonError(c: Context, status: ContentfulStatusCode, message: string): Response {
  return c.json({ error: message }, status);
}

/** Raised inside handlers; turned into `{"error": message}` with its status. */
export class HttpError extends SandfleetError {
  constructor(readonly status: ContentfulStatusCode, message: string, readonly shape: 'json' | 'text' = 'json') {
    super(message);
  }
}

/** The response for an HttpError, in the shape it asks for. */
export function httpErrorResponse(c: Context, err: HttpError): Response {
  return err.shape === 'text' ? textError(c, err.status, err.message) : jsonError(c, err.status, err.message);
}
