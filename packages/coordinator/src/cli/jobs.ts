import fs from 'node:fs/promises';
import type { Command } from 'commander';
import type { JobView } from '../user-api/views.js';
import { ApiError, type ApiClient } from './api-client.js';
import { submitBatch } from './batch-submit.js';

type ClientFactory = () => ApiClient;

/** `sandfleet jobs submit|list|show|logs|cancel|retry`. */
export function registerJobCommands(program: Command, client: ClientFactory): void {
  const jobs = program.command('jobs').description('submit and inspect jobs');

  jobs
    .command('submit')
    .description('submit a job from a JSON file (or - for stdin) shaped like the Job payload plus "queue", or many with --batch')
    .argument('[file]', 'JSON job spec (not with --batch)')
    .option('-q, --queue <queue>', 'queue (batches, codeintel or one the site config declares), overriding the file')
    .option('-f, --follow', 'follow the job log until it ends; exit 1 unless it completed')
    .option(
      '-b, --batch <file>',
      'submit every job of an NDJSON file (or - for stdin; one job spec per line) in as few requests as the coordinator takes; prints one id per line, in order',
    )
    .action(async (file: string | undefined, opts: { queue?: string; follow?: boolean; batch?: string }) => {
      if (opts.batch !== undefined) {
        if (file !== undefined || opts.follow) throw new ApiError(0, 'jobs submit --batch takes no <file> and no --follow');
        const started = performance.now();
        const queued = await submitBatch(client(), opts.batch, { queue: opts.queue, print: (id) => console.log(id) });
        process.stderr.write(`submitted ${queued} jobs in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
        return;
      }
      if (file === undefined) throw new ApiError(0, 'jobs submit needs a <file> (or --batch <file>)');
      const text = file === '-' ? await readStdin() : await fs.readFile(file, 'utf8');
      const spec = JSON.parse(text) as Record<string, unknown>;
      if (opts.queue) spec.queue = opts.queue;
      const job = await client().request<JobView>('POST', '/api/jobs', spec);
      console.log(`submitted job ${job.id} to queue ${job.queue}`);
      if (opts.follow) process.exitCode = (await followLogs(client(), job.id)) === 'completed' ? 0 : 1;
    });

  jobs
    .command('list')
    .description('list jobs, newest first')
    .option('-q, --queue <queue>', 'only this queue (batches, codeintel or one the site config declares; `sandfleet queues` lists them)')
    .option('-s, --state <state>', 'only this state (queued, processing, completed, errored, failed, canceled)')
    .option('-r, --repository <name>', 'only jobs of this repository')
    .option('-n, --limit <n>', 'at most this many', '50')
    .action(async (opts: { queue?: string; state?: string; repository?: string; limit: string }) => {
      const params = new URLSearchParams({
        limit: opts.limit,
        ...(opts.queue ? { queue: opts.queue } : {}),
        ...(opts.state ? { state: opts.state } : {}),
        ...(opts.repository ? { repository: opts.repository } : {}),
      });
      const { jobs: rows } = await client().request<{ jobs: JobView[] }>('GET', `/api/jobs?${params}`);
      for (const j of rows) console.log(`${String(j.id).padStart(6)}  ${j.queue.padEnd(10)} ${j.state.padEnd(11)} ${j.repositoryName || '-'}  ${j.failureMessage ?? ''}`);
    });

  jobs
    .command('show')
    .description("print a job's state, steps and the start of each step's output as JSON")
    .argument('<id>', 'job id')
    .action(async (id: string) => {
      console.log(JSON.stringify(await client().request('GET', `/api/jobs/${encodeURIComponent(id)}`), null, 2));
    });

  jobs
    .command('logs')
    .description("print a job's whole log (its current attempt)")
    .argument('<id>', 'job id')
    .option('-f, --follow', 'follow until the job ends')
    .action(async (id: string, opts: { follow?: boolean }) => {
      if (opts.follow) {
        await followLogs(client(), Number(id));
        return;
      }
      // The whole log, streamed: a job view holds only the start of each step's output.
      const api = client();
      const job = await api.request<JobView>('GET', `/api/jobs/${encodeURIComponent(id)}`);
      const endsWithNewline = await downloadLog(api, `/api/jobs/${encodeURIComponent(id)}/log.txt`);
      if (!endsWithNewline) process.stdout.write('\n');
      console.log(`state: ${job.state}${job.failureMessage ? ` (${job.failureMessage})` : ''}`);
    });

  jobs
    .command('cancel')
    .description('cancel a queued job, or ask the executor of a running one to stop it')
    .argument('<id>', 'job id')
    .action(async (id: string) => {
      const job = await client().request<JobView>('POST', `/api/jobs/${encodeURIComponent(id)}/cancel`);
      console.log(`job ${job.id}: ${job.state}${job.cancel && job.state === 'processing' ? ' (cancel requested)' : ''}`);
    });

  jobs
    .command('retry')
    .description('enqueue a finished job again as a new job (same queue, payload and repository)')
    .argument('<id>', 'the finished job to retry')
    .action(async (id: string) => {
      const job = await client().request<JobView>('POST', `/api/jobs/${encodeURIComponent(id)}/retry`);
      console.log(`job ${job.id} queued in ${job.queue}, retrying job ${job.retryOf}`);
    });
}

/**
 * Prints a job's log as it streams, in the order the API sends it (a step before its output, its
 * exit after it); returns the final state.
 */
export async function followLogs(client: ApiClient, id: number): Promise<string> {
  let finalState = 'unknown';
  let current: string | undefined;
  await client.stream(`/api/jobs/${id}/logs`, (event, data) => {
    const payload = JSON.parse(data) as Record<string, unknown>;
    if (event === 'entry') {
      const step = `${payload.attempt}:${payload.idx}`;
      if (step !== current) {
        current = step;
        console.log(`── ${payload.key}`);
      }
      if (payload.exitCode != null) console.log(`── ${payload.key} exited ${payload.exitCode} after ${payload.durationMs} ms`);
    } else if (event === 'output') {
      process.stdout.write(String(payload.out ?? ''));
    } else if (event === 'state' || event === 'end') {
      if (event === 'state') console.log(`state: ${payload.state}${payload.failureMessage ? ` (${payload.failureMessage})` : ''}`);
      finalState = String(payload.state);
    }
  });
  return finalState;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Writes a log's text to stdout; true when it was empty or ended with a newline. */
async function downloadLog(api: ApiClient, path: string): Promise<boolean> {
  let last = 10;
  await api.download(path, async (chunk) => {
    if (chunk.length) last = chunk[chunk.length - 1]!;
    if (!process.stdout.write(chunk)) await new Promise((resolve) => process.stdout.once('drain', resolve));
  });
  return last === 10;
}
