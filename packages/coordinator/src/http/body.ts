import type { Context } from 'hono';
import type { z } from 'zod';
import { HttpError } from './errors.js';

/**
 * Decodes a JSON body the way the executor API promises: a body that is not JSON or does not fit
 * the schema is a 400 `Failed to unmarshal payload: …` naming the field, never a crash.
 */
export async function readJsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const text = await c.req.text();
  let json: unknown;
  try {
    json = text.trim() === '' ? {} : JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `Failed to unmarshal payload: ${(err as Error).message}`, 'text');
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
    throw new HttpError(400, `Failed to unmarshal payload: ${issues}`, 'text');
  }
  return parsed.data;
}
