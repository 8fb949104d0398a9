import { SandfleetError } from '@sandfleet/protocol';
import { enqueueJob, type Database, type Job } from '@sandfleet/db';
import { toStoredSpec, type JobSpecInput } from './job-spec.js';
import type { QueueCatalog } from '../queue-catalog.js';

/** A job spec this coordinator cannot run as given; the message says what to change. */
export class JobSubmitError extends SandfleetError {
  constructor(message: string) {
    super(message);
  }
}

/**
 * Queues a validated job spec on one of this coordinator's queues. Every queue takes the same
 * spec: the job payload an executor receives is built from it (executor-api/wire-job.ts). Files that name a `bucket` and `key` would be fetched by the
 * executor through a files API; this coordinator does not serve one, so such a job could only fail
 * when it runs: it is refused here instead.
 */
export async function submitJob(database: Database, queues: QueueCatalog, input: JobSpecInput): Promise<Job> {
  if (!queues.has(input.queue)) throw new JobSubmitError(`queue: unknown queue "${input.queue}": the queues are ${queues.names.join(', ')}`);
  const remote = Object.entries(input.files)
    .filter(([, file]) => file.bucket !== undefined || file.key !== undefined)
    .map(([path]) => path);
  if (remote.length > 0) {
    throw new JobSubmitError(
      `files ${remote.join(', ')}: bucket/key files are fetched through a files API, which this coordinator does not serve; inline the file as "content" (or "contentBase64") instead`,
    );
  }
  return enqueueJob(database.db, { queue: input.queue, spec: toStoredSpec(input), priority: input.priority ?? 0 });
}
