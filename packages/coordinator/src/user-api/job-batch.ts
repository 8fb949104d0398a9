import type { Context } from 'hono';
import { describeIssues, readBodyText } from '../http/body.js';
import { HttpError } from '../http/errors.js';
import { JobSpecInput } from '../jobs/job-spec.js';

/** Content types read as one job spec per line; anything else is read as a JSON array. */
const NDJSON_TYPES = new Set(['application/x-ndjson', 'application/jsonl']);

/** One job of a batch refused: the answer names its index (0-based) and, for NDJSON, its line. */
export class BatchItemError extends HttpError {
  constructor(readonly index: number, readonly line: number | undefined, detail: string) {
    super(400, `job ${index}${line !== undefined ? ` (line ${line})` : ''}: ${detail}`);
  }
}

export interface JobBatch {
  jobs: JobSpecInput[];
  /** The NDJSON line a job came from; undefined for a JSON array. */
  lineOf(index: number): number | undefined;
}

/**
 * Reads a batch body, `POST /api/jobs/batch`: a JSON array of the job specs `POST /api/jobs` takes,
 * or NDJSON (one per line, blank lines skipped) with Content-Type application/x-ndjson. At most
 * `maxJobs` jobs (413 past it); the first invalid job refuses the batch (400 naming it).
 */
export async function readJobBatch(c: Context, maxJobs: number): Promise<JobBatch> {
  const text = await readBodyText(c);
  const type = (c.req.header('Content-Type') ?? '').split(';')[0]!.trim().toLowerCase();
  const items = NDJSON_TYPES.has(type) ? ndjsonItems(text) : arrayItems(text);
  if (items.length === 0) throw new HttpError(400, 'a batch needs at least one job');
  // Counted before any job is validated (NDJSON: before any line is parsed).
  if (items.length > maxJobs) throw new HttpError(413, `a batch holds at most ${maxJobs} jobs, this one has ${items.length}: split it`);
  const jobs = items.map((item, index) => {
    let value = item.value;
    if (item.text !== undefined) {
      try {
        value = JSON.parse(item.text);
      } catch (err) {
        throw new BatchItemError(index, item.line, `not valid JSON: ${(err as Error).message}`);
      }
    }
    const parsed = JobSpecInput.safeParse(value);
    if (!parsed.success) throw new BatchItemError(index, item.line, describeIssues(parsed.error.issues, '(job)'));
    return parsed.data;
  });
  return { jobs, lineOf: (index) => items[index]?.line };
}

/** A job of the body: parsed already (JSON array), or its line's text (NDJSON). */
interface Item {
  value?: unknown;
  text?: string;
  line?: number;
}

function arrayItems(text: string): Item[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `request body is not valid JSON: ${(err as Error).message} (send NDJSON with Content-Type: application/x-ndjson)`);
  }
  if (!Array.isArray(json)) throw new HttpError(400, 'a batch is a JSON array of job specs (or NDJSON with Content-Type: application/x-ndjson)');
  return json.map((value: unknown) => ({ value }));
}

function ndjsonItems(text: string): Item[] {
  const items: Item[] = [];
  for (const [i, line] of text.split('\n').entries()) if (line.trim() !== '') items.push({ text: line, line: i + 1 });
  return items;
}
