import type { Readable } from 'node:stream';
import type { WireJob } from '@sandfleet/protocol';
import type { JobLogContext } from '../logs/logged-command.js';
import { cloneRepository, type GitHost } from './clone.js';
import { writeJobFiles } from './workspace.js';

/** Everything needed to build a job's workspace, wherever it is built. */
export interface WorkspaceRequest {
  /** Where the setup's log entries go. */
  ctx: JobLogContext;
  job: Pick<WireJob, 'id' | 'version' | 'files' | 'dockerSteps' | 'repositoryName' | 'repositoryDirectory' | 'commit' | 'fetchTags' | 'shallowClone' | 'sparseCheckout'>;
  /** Instance base URL: the git proxy forwards to its git endpoints. */
  frontendUrl: string;
  /** Authorization, X-Sourcegraph-Job-ID and X-Sourcegraph-Executor-Name for the git proxy. */
  jobHeaders: Readonly<Record<string, string>>;
  /** Fetches a `bucket`/`key` file from the files API. */
  getFile: (bucket: string, key: string, signal: AbortSignal) => Promise<Readable>;
  /** PATH and HOME of the executor, for git. */
  host: GitHost;
}

/**
 * The shared host-side workspace preparation: clones the repository (if the job has one) through
 * the local git proxy and writes the job's files and step scripts, all straight into
 * `workspaceDir`. Returns the step scripts' paths relative to the workspace, by step index.
 */
export async function prepareWorkspaceOnHost(workspaceDir: string, request: WorkspaceRequest, signal: AbortSignal): Promise<string[]> {
  const { ctx, job } = request;
  if (job.repositoryName) {
    await cloneRepository(ctx, job, { workspaceDir, frontendUrl: request.frontendUrl, jobHeaders: request.jobHeaders, host: request.host }, signal);
  }
  return writeJobFiles(ctx, job, { workspaceDir, getFile: request.getFile }, signal);
}
