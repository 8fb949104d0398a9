import { ZERO_TIME, type WireJob } from '@sandfleet/protocol';
import type { JobSpec } from '@sandfleet/db';

/**
 * Builds the Job payload for an executor (docs/protocol.md, "The Job payload") with the field order Sourcegraph
 * marshals: v1 carries file content as text, v2 as base64 plus `dockerAuthConfig`.
 */
export function toWireJob(
  job: { id: number; spec: JobSpec },
  token: string,
  options: { v2: boolean; queue?: string | undefined },
): WireJob {
  const { spec } = job;
  const files: NonNullable<WireJob['files']> = {};
  for (const [path, f] of Object.entries(spec.files ?? {})) {
    const content = f.content === undefined ? undefined : options.v2 ? f.content : Buffer.from(f.content, 'base64').toString('utf8');
    files[path] = {
      ...(content !== undefined ? { content } : {}),
      ...(f.bucket ? { bucket: f.bucket } : {}),
      ...(f.key ? { key: f.key } : {}),
      modifiedAt: f.modifiedAt || ZERO_TIME,
    };
  }
  return {
    ...(options.v2 ? { version: 2 } : {}),
    id: job.id,
    token,
    ...(options.queue ? { queue: options.queue } : {}),
    repositoryName: spec.repositoryName,
    repositoryDirectory: spec.repositoryDirectory,
    commit: spec.commit,
    fetchTags: spec.fetchTags,
    shallowClone: spec.shallowClone,
    sparseCheckout: spec.sparseCheckout ?? null,
    files,
    dockerSteps: spec.dockerSteps ?? null,
    cliSteps: spec.cliSteps ?? null,
    redactedValues: spec.redactedValues ?? null,
    ...(options.v2 ? { dockerAuthConfig: spec.dockerAuthConfig ?? {} } : {}),
  };
}
