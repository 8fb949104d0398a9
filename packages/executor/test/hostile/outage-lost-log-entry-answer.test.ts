import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { testBackends } from '@sandfleet/test-helpers/db';
import { ACCESS_TOKEN, startCoordinatorProcess, waitForJobState, type CoordinatorProcess } from '@sandfleet/test-helpers/coordinator';
import { startExecutorProcess, type ExecutorProcess } from '@sandfleet/test-helpers';

/**
 * A network that loses answers: a loopback proxy between the executor and the coordinator forwards
 * every addExecutionLogEntry, lets the coordinator store the entry, then drops the connection
 * instead of passing the answer on. The executor retries each add; the coordinator must recognise
 * the retry (its log-entry key) so that the job's log holds each entry once.
 */
interface LossyProxy {
  url: string;
  droppedAnswers: () => number;
  close: () => Promise<void>;
}

/** Forwards requests to `upstream`; the first answer to each distinct addExecutionLogEntry body is lost. */
async function startLossyProxy(upstream: string): Promise<LossyProxy> {
  const seenBodies = new Set<string>();
  let dropped = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks);
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(req.headers)) {
          if (typeof value === 'string' && !['host', 'connection', 'content-length', 'transfer-encoding'].includes(name)) headers[name] = value;
        }
        const answer = await fetch(new URL(req.url ?? '/', upstream), { method: req.method, headers, ...(body.length > 0 ? { body } : {}) });
        const text = Buffer.from(await answer.arrayBuffer());
        const isAdd = (req.url ?? '').endsWith('/addExecutionLogEntry');
        if (isAdd && answer.status === 200 && !seenBodies.has(body.toString())) {
          seenBodies.add(body.toString());
          dropped++;
          req.socket.destroy();
          return;
        }
        const out: Record<string, string> = {};
        answer.headers.forEach((value, name) => {
          if (!['content-length', 'transfer-encoding', 'connection', 'content-encoding'].includes(name)) out[name] = value;
        });
        res.writeHead(answer.status, out).end(text);
      })().catch(() => req.socket.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    droppedAnswers: () => dropped,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

for (const backend of testBackends()) {
  describe(`lost answers to addExecutionLogEntry (${backend})`, () => {
    let coordinator: CoordinatorProcess;
    let proxy: LossyProxy;
    let executor: ExecutorProcess;
    before(async () => {
      coordinator = await startCoordinatorProcess(backend);
      proxy = await startLossyProxy(coordinator.url);
      executor = startExecutorProcess(proxy.url, ACCESS_TOKEN, { EXECUTOR_RUNTIME: 'shell', EXECUTOR_QUEUE_POLL_INTERVAL: '200ms' });
    });
    after(async () => {
      await executor?.stop();
      await proxy?.close();
      await coordinator?.stop();
    });

    it('store each entry once, with its whole output', { timeout: 180_000 }, async () => {
      const submitted = await coordinator.api('POST', '/api/jobs', {
        queue: 'batches',
        dockerSteps: [
          { image: 'ignored', commands: ['echo first-step'] },
          { image: 'ignored', commands: ['echo second-step'] },
        ],
      });
      assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
      const job = await waitForJobState(coordinator, submitted.body.id as number, ['completed', 'failed', 'errored', 'canceled'], 150_000);
      assert.equal(job.state, 'completed', `${JSON.stringify(job, null, 2)}\n${executor.output().slice(-2000)}`);
      assert.ok(proxy.droppedAnswers() >= 2, `answers dropped: ${proxy.droppedAnswers()}`);
      const keys = job.executionLogs.map((e: { key: string }) => e.key);
      assert.deepEqual(keys, [...new Set(keys)], `one entry per key: ${keys.join(', ')}`);
      const out = (key: string) => String(job.executionLogs.find((e: { key: string }) => e.key === key)?.out ?? '').split('\n').filter((l) => l.startsWith('stdout: '));
      assert.deepEqual(out('step.docker.0'), ['stdout: first-step']);
      assert.deepEqual(out('step.docker.1'), ['stdout: second-step']);
    });
  });
}
