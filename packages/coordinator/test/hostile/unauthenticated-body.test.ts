import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { testBackends } from '@sandfleet/test-helpers/db';
import { startCoordinatorServer, type CoordinatorServer } from '@sandfleet/test-helpers/coordinator';

const BODY_BYTES = 9 * 1024 * 1024;

/**
 * Posts a 9 MB body without credentials on a raw socket, writing only as fast as the connection
 * takes it. Resolves with the answer's first line and how much of the body the connection took
 * before the server closed it.
 */
function postUnauthenticated(url: string, path: string, framing: 'length' | 'chunked'): Promise<{ statusLine: string; written: number; answeredAt: number }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    let answer = '';
    let written = 0;
    let answeredAt = -1;
    let closed = false;
    socket.on('data', (chunk) => {
      if (answeredAt < 0) answeredAt = written;
      answer += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      resolve({ statusLine: answer.split('\r\n')[0] ?? '', written, answeredAt });
    });
    const length = framing === 'length' ? `Content-Length: ${BODY_BYTES}` : 'Transfer-Encoding: chunked';
    socket.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\n${length}\r\n\r\n`);
    const data = Buffer.alloc(64 * 1024, 0x20);
    const chunk = framing === 'length' ? data : Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
    const pump = () => {
      while (!closed && written < BODY_BYTES) {
        written += chunk.length;
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
      // Everything was taken: the server read it all. Leave it a moment to answer, then hang up.
      if (!closed) setTimeout(() => socket.destroy(), 2_000);
    };
    pump();
  });
}

for (const backend of testBackends()) {
  describe(`unauthenticated request bodies (${backend})`, () => {
    let coordinator: CoordinatorServer;
    before(async () => {
      coordinator = await startCoordinatorServer(backend);
    });
    after(async () => coordinator?.close());

    const cases = ['/api/jobs', '/api/jobs/batch', '/.executors/queue/batches/addExecutionLogEntry', '/.executors/git/example.com/r/git-upload-pack'].flatMap((path) =>
      (['chunked', 'length'] as const).map((framing) => ({ path, framing })),
    );
    for (const { path, framing } of cases) {
      it(`answers 401 to a 9 MB POST ${path} (${framing}) without reading the body`, async () => {
        const { statusLine, written, answeredAt } = await postUnauthenticated(coordinator.url, path, framing);
        assert.match(statusLine, /^HTTP\/1\.1 401 /);
        assert.ok(answeredAt >= 0 && answeredAt < BODY_BYTES, 'answered before the body was sent');
        // The kernel's socket buffers take a few MB; a server reading the body takes all of it.
        assert.ok(written < BODY_BYTES, `the connection took ${written} of ${BODY_BYTES} bytes`);
        assert.equal(await (await fetch(`${coordinator.url}/healthz`)).text(), 'ok');
        // Other clients are served as before.
        const jobs = await coordinator.admin('GET', '/api/jobs');
        assert.ok(Array.isArray(jobs.jobs));
      });
    }
  });
}
