import type { ExecutorJob } from '../src/index.js';

/** A dequeued single-queue job with no repository, plus the given fields. */
export function testJob(id: number, fields: Partial<ExecutorJob> = {}): ExecutorJob {
  return {
    id,
    uid: String(id),
    queue: 'batches',
    token: `job-token-${id}`,
    repositoryName: '',
    repositoryDirectory: '',
    commit: '',
    fetchTags: false,
    shallowClone: false,
    ...fields,
  };
}
