/**
 * The simulated fleet of bench/scale.ts (P8), run as a process of its own so its CPU is not the
 * coordinator's: N executors speaking the real executor API over keep-alive connections (one
 * node:http Agent, the connection pool), each heartbeating every 5 s (staggered) and long-polling
 * dequeue; a job it gets is marked complete with its job token at once.
 *   node --import tsx bench/scale-fleet.ts --url=URL --executors=N --warmup=S --seconds=S
 * Prints `window start` and `window end` lines around the measurement window, then one JSON line:
 * latencies (ms) of the requests sent inside the window by kind, the jobs received (id, when) and
 * the errors.
 */
import http from 'node:http';
import { ACCESS_TOKEN } from '@sandfleet/test-helpers/coordinator';
import { jobHeaders } from '@sandfleet/test-helpers';
import { numberArg, stringArg } from './support.js';

const url = new URL(stringArg('url') ?? 'http://127.0.0.1:3080');
const EXECUTORS = numberArg('executors', 1000);
const WARMUP_S = numberArg('warmup', 10);
const SECONDS = numberArg('seconds', 30);
const WAIT_S = numberArg('wait', 30);
const HEARTBEAT_MS = 5_000;
const QUEUE = 'batches';

const agent = new http.Agent({ keepAlive: true, maxSockets: EXECUTORS * 2 + 16 });
const telemetry = { os: 'linux', architecture: 'amd64', dockerVersion: '', executorVersion: '5.3.0', gitVersion: '2.39.5', igniteVersion: '', srcCliVersion: '' };

interface Answer {
  status: number;
  body: string;
}

function post(path: string, body: unknown, headers: Record<string, string>): Promise<Answer> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path, method: 'POST', agent, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

const auth = { Authorization: `token-executor ${ACCESS_TOKEN}` };
let windowStart = Infinity;
let windowEnd = Infinity;
let stopping = false;
const latencies: Record<'heartbeat' | 'markComplete' | 'dequeueEmpty' | 'dequeueJob', number[]> = { heartbeat: [], markComplete: [], dequeueEmpty: [], dequeueJob: [] };
const received: { id: number; at: number }[] = [];
const errors: string[] = [];

/** Sends a request; its latency counts when it started inside the window. */
async function timed(kind: keyof typeof latencies | ((a: Answer) => keyof typeof latencies), send: () => Promise<Answer>): Promise<Answer | undefined> {
  const started = performance.now();
  try {
    const answer = await send();
    const k = typeof kind === 'function' ? kind(answer) : kind;
    if (started >= windowStart && started < windowEnd) latencies[k].push(performance.now() - started);
    return answer;
  } catch (err) {
    if (!stopping) errors.push(`${typeof kind === 'function' ? 'dequeue' : kind}: ${(err as Error).message}`);
    return undefined;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function heartbeatLoop(name: string, offsetMs: number, onRegistered: () => void): Promise<void> {
  await sleep(offsetMs);
  while (!stopping) {
    const next = performance.now() + HEARTBEAT_MS;
    const answer = await timed('heartbeat', () => post(`/.executors/queue/${QUEUE}/heartbeat`, { executorName: name, version: 'V2', jobIds: [], ...telemetry }, auth));
    if (answer?.status === 200) onRegistered();
    if (answer && answer.status !== 200 && !stopping) errors.push(`heartbeat ${answer.status}: ${answer.body.slice(0, 200)}`);
    await sleep(Math.max(0, next - performance.now()));
  }
}

async function dequeueLoop(name: string, registered: Promise<void>): Promise<void> {
  await registered;
  while (!stopping) {
    const answer = await timed(
      (a) => (a.status === 200 ? 'dequeueJob' : 'dequeueEmpty'),
      () => post(`/.executors/queue/${QUEUE}/dequeue`, { executorName: name, version: '5.3.0' }, { ...auth, 'X-Sandfleet-Dequeue-Wait': String(WAIT_S) }),
    );
    if (!answer || stopping) {
      if (!answer) await sleep(1000);
      continue;
    }
    if (answer.status === 200) {
      const job = JSON.parse(answer.body) as { id: number; token: string };
      const now = performance.now();
      if (now >= windowStart && now < windowEnd) received.push({ id: job.id, at: Date.now() });
      const mark = await timed('markComplete', () => post(`/.executors/queue/${QUEUE}/markComplete`, { executorName: name, jobId: job.id }, jobHeaders(job, name)));
      if (mark && mark.status !== 204 && !stopping) errors.push(`markComplete ${mark.status}: ${mark.body.slice(0, 200)}`);
    } else if (answer.status !== 204) {
      errors.push(`dequeue ${answer.status}: ${answer.body.slice(0, 200)}`);
      await sleep(1000);
    }
  }
}

const loops: Promise<void>[] = [];
for (let i = 0; i < EXECUTORS; i++) {
  const name = `sim-${i}`;
  const offset = (i * HEARTBEAT_MS) / EXECUTORS;
  // Dequeue only once a heartbeat is through: job-token calls need an executor the coordinator knows.
  let onRegistered!: () => void;
  const registered = new Promise<void>((resolve) => (onRegistered = resolve));
  loops.push(heartbeatLoop(name, offset, onRegistered));
  loops.push(dequeueLoop(name, registered));
}
await sleep(WARMUP_S * 1000);
windowStart = performance.now();
console.log('window start');
await sleep(SECONDS * 1000);
windowEnd = performance.now();
console.log('window end');
stopping = true;
agent.destroy();
await Promise.race([Promise.all(loops), sleep(2000)]);
console.log(JSON.stringify({ latencies, received, errors: errors.slice(0, 20), errorCount: errors.length }));
process.exit(0);
