import type { ChildProcess } from 'node:child_process';

/** How much of a child's output a response may hold in memory while its client does not read. */
const RESPONSE_BUFFER_BYTES = 256 * 1024;

/**
 * A response body streamed from a child process's stdout, safe against any client behaviour: the
 * child is paused while the client does not read (memory stays bounded), and killed when the client
 * goes away. Nothing is enqueued after the stream was cancelled or ended.
 */
export function childOutputStream(child: ChildProcess, prefix: Uint8Array = new Uint8Array(0)): ReadableStream<Uint8Array> {
  const out = child.stdout!;
  let finished = false;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        if (prefix.length) controller.enqueue(prefix);
        out.on('data', (chunk: Buffer) => {
          if (finished) return;
          controller.enqueue(chunk);
          if ((controller.desiredSize ?? 0) <= 0) out.pause();
        });
        const finish = (err?: Error) => {
          if (finished) return;
          finished = true;
          if (err) controller.error(err);
          else controller.close();
        };
        child.once('error', finish);
        child.once('close', () => finish());
      },
      pull() {
        out.resume();
      },
      cancel() {
        finished = true;
        out.destroy();
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      },
    },
    { highWaterMark: RESPONSE_BUFFER_BYTES, size: (chunk) => chunk.byteLength },
  );
}
