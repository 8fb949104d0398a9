import type { ExecutionLogEntry } from '@sandfleet/protocol';
import { readLogText, type Database } from '@sandfleet/db';

/** How much of each step's output a job view shows; the rest is read from the log's text. */
export const LOG_PREVIEW_BYTES = 64 * 1024;

/** The line that starts a step in a log's text (and in `sandfleet jobs logs`). */
export function stepHeader(entry: ExecutionLogEntry): string {
  return `── ${entry.key} ${entry.exitCode == null ? '' : `(exit ${entry.exitCode}, ${entry.durationMs} ms)`}\n`;
}

/**
 * A job's current log as plain text, each step under its header, streamed from the database in
 * bounded batches as the client reads: the next batch is read only when the last one was taken,
 * and a client that goes away stops the reading.
 */
export function logTextStream(database: Database, jobId: number): ReadableStream<Uint8Array> {
  const pieces = readLogText(database.db, jobId);
  const encoder = new TextEncoder();
  let lastChar = '\n';
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await pieces.next();
        if (next.done) {
          controller.close();
          return;
        }
        const piece = next.value;
        let text = 'entry' in piece ? `${lastChar === '\n' ? '' : '\n'}${stepHeader(piece.entry)}` : piece.out;
        if (text.length) lastChar = text[text.length - 1]!;
        controller.enqueue(encoder.encode(text));
      },
      async cancel() {
        await pieces.return(undefined);
      },
    },
    { highWaterMark: 0 },
  );
}
