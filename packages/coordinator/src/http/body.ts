import type { Context } from 'hono';
import type { z } from 'zod';
import { HttpError } from './errors.js';
import { matchKeysCaseInsensitively } from './json-keys.js';
import { BodyTooLargeError } from './body-limit.js';

/**
 * How an API words and shapes a refused body. The executor API answers as Sourcegraph's does: a
 * plain-text 400 `Failed to unmarshal payload: …`, an empty body read as `{}`. The user API answers
 * `{"error": …}` and wants a body.
 */
export interface BodyDialect {
  shape: 'json' | 'text';
  /** Read in place of an empty (or blank) body; undefined: an empty body is not JSON. */
  emptyBody?: unknown;
  invalidJson(detail: string): string;
  invalidShape(issues: string): string;
  /** Keys match the schema's regardless of case, as Go's decoder matches them. */
  caseInsensitiveKeys?: boolean;
}

export const EXECUTOR_API_BODY: BodyDialect = {
  shape: 'text',
  emptyBody: {},
  invalidJson: (detail) => `Failed to unmarshal payload: ${detail}`,
  invalidShape: (issues) => `Failed to unmarshal payload: ${issues}`,
  caseInsensitiveKeys: true,
};

export const USER_API_BODY: BodyDialect = {
  shape: 'json',
  invalidJson: (detail) => `request body is not valid JSON: ${detail}`,
  invalidShape: (issues) => issues,
};

/** Decodes a JSON body and checks it against `schema`; anything else is a 400 naming the field, never a crash. */
export async function readJsonBody<S extends z.ZodType>(c: Context, schema: S, dialect: BodyDialect = EXECUTOR_API_BODY): Promise<z.infer<S>> {
  const text = await readBodyText(c);
  let json: unknown;
  if (dialect.emptyBody !== undefined && text.trim() === '') json = dialect.emptyBody;
  else {
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new HttpError(400, dialect.invalidJson((err as Error).message), dialect.shape);
    }
  }
  return parseInput(schema, dialect.caseInsensitiveKeys ? matchKeysCaseInsensitively(schema, json) : json, dialect);
}

/** The whole body as text; a body past the limit (read in chunks) is a 413. */
export async function readBodyText(c: Context): Promise<string> {
  return c.req.text().catch((err: unknown) => {
    const tooLarge = tooLargeError(err);
    // Shaped as the body limit answers a declared length past it.
    throw tooLarge ? new HttpError(413, tooLarge.message) : err;
  });
}

/** The BodyTooLargeError behind a failed body read, if that is why it failed. */
function tooLargeError(err: unknown): BodyTooLargeError | undefined {
  if (err instanceof BodyTooLargeError) return err;
  const cause = (err as { cause?: unknown } | null)?.cause;
  return cause instanceof BodyTooLargeError ? cause : undefined;
}

/** Checks a decoded value (a body, query parameters, a path parameter) against `schema`. */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, dialect: BodyDialect = USER_API_BODY): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new HttpError(400, dialect.invalidShape(describeIssues(parsed.error.issues)), dialect.shape);
  return parsed.data;
}

/** Zod issues as one line: `path: message; …`. */
export function describeIssues(issues: z.ZodError['issues'], root = '(body)'): string {
  return issues.map((i) => `${i.path.join('.') || root}: ${i.message}`).join('; ');
}
