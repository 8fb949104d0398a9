import { SandfleetError } from '@sandfleet/protocol';
import { enqueueJob, enqueueJobs, type Database, type EnqueueJobInput, type Job } from '@sandfleet/db';
import { toStoredSpec, type JobSpecInput } from './job-spec.js';
import type { QueueCatalog } from '../queue-catalog.js';

/** A job spec this coordinator cannot run as given; the message says what to change. */
export class JobSubmitError extends SandfleetError {
  /** `index`: the refused job's place in a batch (submitJobs). */
  constructor(message: string, readonly index?: number) {
    super(message);
  }
}

/**
 * Queues a validated job spec on one of this coordinator's queues. Every queue takes the same
 * spec: the job payload an executor receives is built from it (executor-api/wire-job.ts).
 */
export async function submitJob(database: Database, queues: QueueCatalog, input: JobSpecInput): Promise<Job> {
  const refused = refusal(queues, input);
  if (refused !== undefined) throw new JobSubmitError(refused);
  return enqueueJob(database.db, toEnqueueInput(input));
}

/**
 * Queues validated job specs all or none, in one statement; resolves with their ids in order. One
 * job this coordinator cannot run refuses the batch, naming its index.
 */
export async function submitJobs(database: Database, queues: QueueCatalog, inputs: readonly JobSpecInput[]): Promise<number[]> {
  for (const [index, input] of inputs.entries()) {
    const refused = refusal(queues, input);
    if (refused !== undefined) throw new JobSubmitError(refused, index);
  }
  return enqueueJobs(database.db, inputs.map(toEnqueueInput));
}

/**
 * Why this coordinator cannot run `input`, or undefined. Files that name a `bucket` and `key` would
 * be fetched by the executor through a files API; this coordinator does not serve one, so such a
 * job could only fail when it runs: it is refused instead.
 */
function refusal(queues: QueueCatalog, input: JobSpecInput): string | undefined {
  if (!queues.has(input.queue)) return `queue: unknown queue "${input.queue}": the queues are ${queues.names.join(', ')}`;
  const remote = Object.entries(input.files)
    .filter(([, file]) => file.bucket !== undefined || file.key !== undefined)
    .map(([path]) => path);
  if (remote.length > 0) {
    return `files ${remote.join(', ')}: bucket/key files are fetched through a files API, which this coordinator does not serve; inline the file as "content" (or "contentBase64") instead`;
  }
  return undefined;
}

function toEnqueueInput(input: JobSpecInput): EnqueueJobInput {
  return { queue: input.queue, spec: toStoredSpec(input), priority: input.priority ?? 0 };
}
