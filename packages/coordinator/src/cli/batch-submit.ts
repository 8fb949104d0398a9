import fs from 'node:fs';
import readline from 'node:readline';
import { ApiError, type ApiClient } from './api-client.js';

/** What `POST /api/jobs/batch` takes per request (`GET /api/jobs/batch`). */
interface BatchLimits {
  maxJobs: number;
  maxBodyBytes: number;
}

/** A job spec as read from its line of the NDJSON input. */
interface Line {
  number: number;
  text: string;
}

/**
 * `sandfleet jobs submit --batch FILE|-`: reads NDJSON (one job spec per line, blank lines skipped),
 * sends it in requests as large as the coordinator takes, one at a time, and prints each job's id
 * as its request is answered, in input order. Each request is all or none; on a refused one it stops
 * with the offending line's number, and the ids printed before it are queued. Resolves with the
 * number of jobs queued.
 */
export async function submitBatch(client: ApiClient, source: string, options: { queue?: string | undefined; print: (id: number) => void }): Promise<number> {
  const limits = await client.request<BatchLimits>('GET', '/api/jobs/batch');
  const input = source === '-' ? process.stdin : fs.createReadStream(source, 'utf8');
  let chunk: Line[] = [];
  let chunkBytes = 0;
  let queued = 0;
  const flush = async () => {
    if (chunk.length === 0) return;
    for (const id of await sendChunk(client, chunk, queued)) options.print(id);
    queued += chunk.length;
    chunk = [];
    chunkBytes = 0;
  };
  let number = 0;
  for await (const raw of readline.createInterface({ input, crlfDelay: Infinity })) {
    number++;
    if (raw.trim() === '') continue;
    const text = options.queue === undefined ? raw : withQueue(raw, options.queue);
    if (text instanceof Error) throw new ApiError(0, `line ${number}: ${text.message}${queuedNote(queued)}`);
    const bytes = Buffer.byteLength(text) + 1;
    if (bytes > limits.maxBodyBytes) {
      throw new ApiError(0, `line ${number}: the job is ${bytes} bytes, more than the coordinator takes in one request (${limits.maxBodyBytes})${queuedNote(queued)}`);
    }
    if (chunk.length === limits.maxJobs || chunkBytes + bytes > limits.maxBodyBytes) await flush();
    chunk.push({ number, text });
    chunkBytes += bytes;
  }
  await flush();
  return queued;
}

async function sendChunk(client: ApiClient, chunk: Line[], queuedBefore: number): Promise<number[]> {
  try {
    const { ids } = await client.requestRaw<{ ids: number[] }>('POST', '/api/jobs/batch', {
      contentType: 'application/x-ndjson',
      text: chunk.map((line) => line.text).join('\n'),
    });
    return ids;
  } catch (err) {
    const index = err instanceof ApiError ? err.answer?.index : undefined;
    const line = typeof index === 'number' ? chunk[index] : undefined;
    if (!(err instanceof ApiError) || !line) throw err;
    // The answer names the job within this request; say where it is in the input.
    const detail = String(err.answer?.error ?? err.message).replace(/^job \d+( \(line \d+\))?: /, '');
    throw new ApiError(err.status, `line ${line.number}: ${detail}${queuedNote(queuedBefore)}`, err.answer);
  }
}

/** The line's job spec with its queue replaced (--queue), or why it cannot be. */
function withQueue(text: string, queue: string): string | Error {
  let spec: unknown;
  try {
    spec = JSON.parse(text);
  } catch (err) {
    return new Error(`not valid JSON: ${(err as Error).message}`);
  }
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) return new Error('a job spec is a JSON object');
  return JSON.stringify({ ...spec, queue });
}

function queuedNote(queued: number): string {
  return queued === 0 ? ' (nothing was queued)' : ` (the ${queued} jobs before it were queued: their ids are printed above)`;
}
