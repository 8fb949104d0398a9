import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildRedactions, CoordinatorClient, LinePrefixer, LogFlushError, Redactor, StepLog, UnexpectedStatusError, type LogClient, type StepLogOptions } from '../src/index.js';
import type { EncodedLogChunk } from '../src/apiclient/client.js';
import { LogBudget } from '../src/logs/log-budget.js';
import { LINE_CONTINUED_MARKER, MAX_LINE_CHARS } from '../src/logs/line-prefixer.js';
import { BACKPRESSURE_HIGH_CHARS, CHUNK_BODY_BYTES, UPDATE_MODE_MAX_OUT_BYTES } from '../src/logs/log-stream.js';
import { NUL_REPLACEMENT } from '../src/logs/log-text.js';
import { TestInstance } from '@sandfleet/test-helpers';

const SECRET = 'p4ssw0rd-in-output';

describe('step log entries', () => {
  let instance: TestInstance;
  let client: CoordinatorClient;
  let nextJobId = 1;
  before(async () => {
    instance = await TestInstance.start();
    client = new CoordinatorClient({
      frontendUrl: instance.url,
      frontendPassword: instance.password,
      executorName: 'exec-log',
      queueNames: ['batches'],
      multiQueue: false,
      retryAttempts: 1,
    });
    await client.ping();
  });
  after(() => instance.close());

  const open = (key = 'step.docker.0', command = ['/bin/sh', `echo ${SECRET}`]) => {
    const job = { id: nextJobId++, token: 'tok', queue: 'batches' };
    const redactor = new Redactor(buildRedactions(instance.password, { [SECRET]: '***' }));
    const log = new StepLog({ client, job, key, command, redactor, flushIntervalMs: 20, retry: { baseDelayMs: 5 } });
    return { job, log };
  };
  const entryOf = (jobId: number) => instance.logs.get(jobId)?.[0];

  const feed = (log: StepLog) => {
    log.onStdout(Buffer.from('first line\npartial '));
    log.onStderr(Buffer.from('warning: p4ssw0'));
    log.onStdout(Buffer.from('line done\n'));
    log.onStderr(Buffer.from('rd-in-output leaked?\n'));
    log.onStdout(Buffer.from('no newline at end'));
  };
  const EXPECTED = 'stdout: first line\nstdout: partial line done\nstderr: warning: *** leaked?\nstdout: no newline at end\n';

  it('adds the entry without exit code, updates it while running, and finishes with exitCode and durationMs', async () => {
    const { job, log } = open();
    log.start();
    const added = await instance.waitFor('the entry', () => entryOf(job.id));
    assert.equal(added.exitCode, undefined);
    assert.equal(added.durationMs, undefined);
    assert.deepEqual(added.command, ['/bin/sh', 'echo ***'], 'the command is redacted too');
    assert.match(added.startTime, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);

    log.onStdout(Buffer.from('early output\n'));
    await instance.waitFor('an update while running', () => entryOf(job.id)!.updates >= 1 && entryOf(job.id)!.out === 'stdout: early output\n');
    assert.equal(entryOf(job.id)!.exitCode, undefined);
    feed(log);
    await log.finish(3);
    const entry = entryOf(job.id)!;
    assert.equal(entry.out, `stdout: early output\n${EXPECTED}`);
    assert.equal(entry.exitCode, 3);
    assert.equal(typeof entry.durationMs, 'number');
    assert.ok(!JSON.stringify(instance.requests.map((r) => r.body)).includes(SECRET));
  });

  it('appends chunks instead of resending the output when the instance offers log-append', async () => {
    instance.extensions = ['log-append'];
    try {
      await client.ping();
      const { job, log } = open();
      log.start();
      log.onStdout(Buffer.from('one\n'));
      await instance.waitFor('the first chunk', () => entryOf(job.id)?.out === 'stdout: one\n');
      feed(log);
      await log.finish(0);
      const entry = entryOf(job.id)!;
      assert.equal(entry.out, `stdout: one\n${EXPECTED}`);
      assert.equal(entry.exitCode, 0);
      assert.equal(typeof entry.durationMs, 'number');
      assert.equal(entry.updates, 0, 'no updateExecutionLogEntry in append mode');
      assert.deepEqual(entry.appendedSeqs, entry.appendedSeqs.map((_, i) => i), 'seq counts from 0');
      const appends = instance.requestsTo('/appendExecutionLog').filter((r) => r.body.jobId === job.id);
      assert.equal(appends.at(-1)!.body.exitCode, 0);
      assert.ok(appends.slice(0, -1).every((r) => r.body.exitCode === undefined));
    } finally {
      instance.extensions = [];
      await client.ping();
    }
  });

  it("uploads a step's first output at once, later output at the next tick", async () => {
    instance.extensions = ['log-append'];
    try {
      await client.ping();
      const job = { id: nextJobId++, token: 'tok', queue: 'batches' };
      const redactor = new Redactor(buildRedactions(instance.password, {}));
      // A tick far in the future: only the first-output rule can send before finish.
      const log = new StepLog({ client, job, key: 'step.docker.0', command: ['sh'], redactor, flushIntervalMs: 600_000, retry: { baseDelayMs: 5 } });
      log.start();
      log.onStdout(Buffer.from('first\n'));
      await instance.waitFor('the first line', () => entryOf(job.id)?.out === 'stdout: first\n');
      log.onStdout(Buffer.from('second\n'));
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(entryOf(job.id)!.out, 'stdout: first\n', 'later output waits for the tick (or the end)');
      await log.finish(0);
      assert.equal(entryOf(job.id)!.out, 'stdout: first\nstdout: second\n');
    } finally {
      instance.extensions = [];
      await client.ping();
    }
  });

  it('resends a failed chunk with the same seq so nothing is lost or doubled', async () => {
    instance.extensions = ['log-append'];
    try {
      await client.ping();
      const { job, log } = open();
      log.start();
      await instance.waitFor('the entry', () => entryOf(job.id));
      instance.failOperations.set('appendExecutionLog', 503);
      log.onStdout(Buffer.from('during outage\n'));
      await instance.waitFor('a failed append', () => instance.requestsTo('/appendExecutionLog').some((r) => r.body.jobId === job.id));
      instance.failOperations.delete('appendExecutionLog');
      log.onStdout(Buffer.from('after outage\n'));
      await log.finish(0);
      const entry = entryOf(job.id)!;
      assert.equal(entry.out, 'stdout: during outage\nstdout: after outage\n');
      const seqs = instance.requestsTo('/appendExecutionLog').filter((r) => r.body.jobId === job.id).map((r) => r.body.seq);
      assert.equal(seqs[0], 0);
      assert.equal(seqs[1], 0, 'the failed chunk is resent verbatim with its seq');
    } finally {
      instance.failOperations.delete('appendExecutionLog');
      instance.extensions = [];
      await client.ping();
    }
  });

  it('fails the final flush loudly', async () => {
    const { job, log } = open('step.docker.fail');
    log.start();
    await instance.waitFor('the entry', () => entryOf(job.id));
    instance.failOperations.set('updateExecutionLogEntry', 500);
    try {
      log.onStdout(Buffer.from('x\n'));
      await assert.rejects(log.finish(0), (err: unknown) =>
        err instanceof LogFlushError && err.name === 'LogFlushError' && err.key === 'step.docker.fail' && /unexpected status code 500/.test(err.message));
    } finally {
      instance.failOperations.delete('updateExecutionLogEntry');
    }
  });

  it('fails when the entry could not even be added', async () => {
    instance.failOperations.set('addExecutionLogEntry', 500);
    try {
      const { log } = open('setup.git.init');
      log.start();
      await assert.rejects(log.finish(0), LogFlushError);
    } finally {
      instance.failOperations.delete('addExecutionLogEntry');
    }
  });
});

/** An in-memory instance with a body limit; answers `fail(op, body)` as the status when it returns one. */
class FakeLogClient implements LogClient {
  readonly entries: { out: string; exitCode?: number; seqs: Set<number> }[] = [];
  readonly bodies: { op: string; bytes: number; seq?: number; out?: string }[] = [];
  fail: (op: string, body: { seq?: number; out?: string }) => number | undefined = () => undefined;
  /** While set, append calls wait for it. */
  gate: Promise<void> | undefined;

  constructor(
    readonly appendMode = true,
    readonly maxBodyBytes = 10 * 1024 * 1024,
  ) {}

  supports(extension: string) {
    return this.appendMode && extension === 'log-append';
  }
  async addExecutionLogEntry(): Promise<number> {
    this.entries.push({ out: '', seqs: new Set() });
    return this.entries.length;
  }
  async appendEncodedExecutionLog(job: { id: number }, { out, ...chunk }: EncodedLogChunk) {
    await this.appendExecutionLog(job, { ...chunk, out: JSON.parse(Buffer.from(out.frame(Buffer.from('"'), Buffer.from('"'))).toString()) as string });
  }
  async appendExecutionLog(job: { id: number }, chunk: { entryId: number; seq: number; out: string; exitCode?: number | null }) {
    await this.gate;
    this.#check('appendExecutionLog', { executorName: 'x', jobId: job.id, ...chunk });
    const entry = this.entries[chunk.entryId - 1]!;
    if (entry.seqs.has(chunk.seq)) return;
    entry.seqs.add(chunk.seq);
    entry.out += chunk.out;
    if (chunk.exitCode != null) entry.exitCode = chunk.exitCode;
  }
  async updateExecutionLogEntry(job: { id: number }, entryId: number, update: { out?: string; exitCode?: number | null }) {
    this.#check('updateExecutionLogEntry', { executorName: 'x', jobId: job.id, entryId, ...update });
    const entry = this.entries[entryId - 1]!;
    if (update.out !== undefined) entry.out = update.out;
    if (update.exitCode != null) entry.exitCode = update.exitCode;
  }
  #check(op: string, body: { seq?: number; out?: string; [field: string]: unknown }) {
    const bytes = Buffer.byteLength(JSON.stringify(body));
    this.bodies.push({ op, bytes, ...(body.seq === undefined ? {} : { seq: body.seq }), ...(body.out === undefined ? {} : { out: body.out }) });
    const status = bytes > this.maxBodyBytes ? 413 : this.fail(op, body);
    if (status !== undefined) throw new UnexpectedStatusError(status, '', 'POST', `/${op}`);
  }
}

describe('step log under hostile output', () => {
  const job = { id: 1, token: 'tok', queue: 'batches' };
  const redactor = new Redactor(buildRedactions('password', {}));
  const open = (client: FakeLogClient, options: Partial<StepLogOptions> = {}) =>
    new StepLog({ job, key: 'step.0', command: [], redactor, flushIntervalMs: 10, retry: { baseDelayMs: 1 }, ...options, client }).start();

  it('sends a 5 MB burst in chunks of at most 1 MiB, never splitting a surrogate pair', async () => {
    const client = new FakeLogClient(true, 10 * 1024 * 1024);
    const log = open(client);
    const text = `${'😀"\\\n'.repeat(600_000)}`;
    log.onStdout(Buffer.from(text));
    await log.finish(0);
    const appends = client.bodies.filter((b) => b.op === 'appendExecutionLog');
    assert.ok(appends.length >= 5, `${appends.length} appends`);
    for (const body of appends) {
      assert.ok(Buffer.byteLength(JSON.stringify(body.out)) <= CHUNK_BODY_BYTES);
      assert.doesNotMatch(body.out!, /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/, 'no lone surrogate');
    }
    assert.equal(client.entries[0]!.out, text.split('\n').slice(0, -1).map((l) => `stdout: ${l}\n`).join(''));
  });

  it('stores NUL as U+2400 and invalid UTF-8 as U+FFFD, also split across reads', async () => {
    const client = new FakeLogClient();
    const log = open(client);
    log.onStdout(Buffer.from([0x61, 0x00, 0x62, 0x0a, 0x63, 0xff, 0x64, 0x0a, 0xc3]));
    log.onStdout(Buffer.from([0xa9, 0x0a]));
    log.writeLine('executor says \0');
    await log.finish(0);
    assert.equal(client.entries[0]!.out, `stdout: a${NUL_REPLACEMENT}b\nstdout: c\uFFFDd\nstdout: é\nexecutor says ${NUL_REPLACEMENT}\n`);
  });

  it('gives up on a refused (4xx) chunk at once, notes it and still sends the exit code', async () => {
    const client = new FakeLogClient();
    client.fail = (op, body) => (op === 'appendExecutionLog' && body.out?.includes('poison') ? 422 : undefined);
    const log = open(client);
    log.onStdout(Buffer.from('poison\n'));
    await new Promise((r) => setTimeout(r, 50));
    log.onStdout(Buffer.from('fine\n'));
    await log.finish(2);
    const poisoned = client.bodies.filter((b) => b.out?.includes('poison'));
    assert.equal(poisoned.length, 1, 'sent once');
    assert.equal(client.entries[0]!.out, 'stdout: fine\n[log incomplete: the coordinator refused 15 bytes of this output (HTTP 422)]\n');
    assert.equal(client.entries[0]!.exitCode, 2);
    assert.deepEqual(log.lostBytes, { truncated: 0, refused: 15, unsent: 0 });
  });

  it('retries 5xx a bounded number of times, then fails the entry', async () => {
    const client = new FakeLogClient();
    client.fail = (op) => (op === 'appendExecutionLog' ? 503 : undefined);
    const log = open(client, { retry: { attempts: 3, baseDelayMs: 1 } });
    log.onStdout(Buffer.from('lost\n'));
    await assert.rejects(log.finish(0), LogFlushError);
    const sends = client.bodies.filter((b) => b.op === 'appendExecutionLog');
    // 3 tries per chunk: the data (unless it went out with the final chunk), then the final chunk.
    assert.ok(sends.length === 3 || sends.length === 6, `${sends.length} sends`);
    for (const seq of new Set(sends.map((b) => b.seq))) assert.equal(sends.filter((b) => b.seq === seq).length, 3);
  });

  it('cuts the output at the budget shared by the entries of a job, with one marker line each', async () => {
    const client = new FakeLogClient();
    const budget = new LogBudget(100);
    const first = open(client, { budget });
    first.onStdout(Buffer.from('0123456789\n'.repeat(8))); // 8 lines of 19 bytes once prefixed
    first.onStdout(Buffer.from('more\n'));
    await first.finish(0);
    const second = open(client, { budget });
    second.onStderr(Buffer.from('nothing fits\n'));
    await second.finish(1);
    assert.equal(client.entries[0]!.out, `${'stdout: 0123456789\n'.repeat(5)}[log truncated: ${3 * 19 + 13} bytes of output dropped after reaching the job's log limit of 100 bytes (EXECUTOR_MAX_LOG_BYTES)]\n`);
    assert.equal(client.entries[1]!.out, `[log truncated: 21 bytes of output dropped after reaching the job's log limit of 100 bytes (EXECUTOR_MAX_LOG_BYTES)]\n`);
    assert.equal(client.entries[1]!.exitCode, 1);
  });

  it('asks the caller to pause while chunks wait for the coordinator, and lets it go on once they are taken', async () => {
    const client = new FakeLogClient();
    let open_: () => void = () => {};
    client.gate = new Promise<void>((r) => (open_ = r));
    const log = open(client);
    const read = Buffer.alloc(64 * 1024, 'y\n');
    let wait: Promise<void> | undefined;
    let reads = 0;
    while (!wait && reads < 1000) {
      wait = log.onStdout(read);
      reads++;
    }
    assert.ok(wait, 'paused');
    // Paused once a few chunks are waiting: bounded, far below the 64 MB fed above if it never paused.
    assert.ok(reads * read.length * 4 <= 2 * BACKPRESSURE_HIGH_CHARS + 4 * read.length, `${reads} reads before pausing`);
    let resumed = false;
    void wait.then(() => (resumed = true));
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(resumed, false);
    client.gate = undefined;
    open_();
    await wait;
    assert.equal(resumed, true);
    await log.finish(0);
    assert.equal(client.entries[0]!.out.length, reads * (read.length / 2) * 'stdout: y\n'.length);
  });

  it('caps an entry without log-append, and notes a refused update', async () => {
    const client = new FakeLogClient(false);
    const log = open(client);
    log.onStdout(Buffer.from('x'.repeat(100) + '\n'));
    for (let i = 0; i < 60; i++) log.onStdout(Buffer.alloc(100_000, 'z\n'));
    await log.finish(0);
    const entry = client.entries[0]!;
    assert.ok(Buffer.byteLength(entry.out) <= UPDATE_MODE_MAX_OUT_BYTES + 200);
    assert.match(entry.out, /\n\[log truncated: \d+ bytes \(.*\) of output dropped after reaching the limit of 4194304 bytes \(4\.0 MiB\) per log entry on instances without log-append\]\n$/);
    assert.ok(client.bodies.every((b) => b.bytes < 5 * 1024 * 1024));

    const refusing = new FakeLogClient(false);
    refusing.fail = (op, body) => (op === 'updateExecutionLogEntry' && body.out?.includes('bad') ? 400 : undefined);
    const refused = open(refusing);
    refused.onStdout(Buffer.from('good\n'));
    await new Promise((r) => setTimeout(r, 50));
    refused.onStdout(Buffer.from('bad\n'));
    await refused.finish(0);
    assert.equal(refusing.entries[0]!.out, 'stdout: good\n[log incomplete: the coordinator refused 12 bytes of this output (HTTP 400)]\n');
    assert.equal(refusing.entries[0]!.exitCode, 0);
  });
});

describe('line prefixing of very long lines', () => {
  it('splits a line longer than the cap into marked pieces, keeping surrogate pairs whole', () => {
    const lines = new LinePrefixer('p: ', 4);
    assert.equal(lines.push('abcdefghij\nk'), `p: abcd\np: ${LINE_CONTINUED_MARKER}efgh\np: ${LINE_CONTINUED_MARKER}ij\n`);
    assert.equal(lines.push('lmno'), 'p: klmn\n');
    assert.equal(lines.push('p'), '');
    assert.equal(lines.end(), `p: ${LINE_CONTINUED_MARKER}op\n`);
    const emoji = new LinePrefixer('', 3);
    assert.equal(emoji.push('a😀😀\n'), `a😀\n${LINE_CONTINUED_MARKER}😀\n`);
  });

  it('handles 50 MB without a newline in linear work', () => {
    const lines = new LinePrefixer('stdout: ');
    const read = 'x'.repeat(64 * 1024);
    let out = 0;
    let emitted = 0;
    for (let fed = 0; fed < 50_000_000; fed += read.length) {
      const text = lines.push(read);
      if (text !== '') emitted++;
      out += text.length;
    }
    out += lines.end().length;
    const reads = Math.ceil(50_000_000 / read.length);
    // Each line piece is emitted once, when the partial line passes the cap: no re-scans.
    assert.ok(emitted <= Math.ceil((reads * read.length) / MAX_LINE_CHARS));
    assert.ok(out < reads * read.length + 100 * 30);
  });

  it('cuts a line at the same places however its text arrives, never inside a surrogate pair', () => {
    let seed = 7;
    const random = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const alphabet = ['x', 'y', '\n', '😀', 'é'];
    for (let round = 0; round < 2000; round++) {
      let text = '';
      for (let i = random(40); i > 0; i--) text += alphabet[random(alphabet.length)];
      // A small line cap and run size, so that cuts and runs happen inside such short texts.
      const whole = new LinePrefixer('p: ', 4, 3);
      const expected = whole.push(text) + whole.end();
      const split = new LinePrefixer('p: ', 4, 3);
      let actual = '';
      for (let pos = 0; pos < text.length; ) {
        const next = Math.min(text.length, pos + 1 + random(6));
        // Splitting only between whole characters, as the UTF-8 decoder hands text on.
        const end = next < text.length && /[\ud800-\udbff]/.test(text[next - 1]!) ? next + 1 : next;
        actual += split.pushPieces(text.slice(pos, end)).join('');
        pos = end;
      }
      actual += split.endPieces().join('');
      assert.equal(actual, expected, JSON.stringify(text));
      assert.ok(!/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(actual), `a lone surrogate in ${JSON.stringify(actual)}`);
      for (const line of actual.split('\n').slice(0, -1)) assert.ok(line.replace(/^p: (\[line continued\] )?/, '').length <= 4, JSON.stringify(line));
    }
  });
});
