import { z } from 'zod';

/** Job states of the queue. */
export const JOB_STATES = ['queued', 'processing', 'completed', 'errored', 'failed', 'canceled'] as const;
export type JobState = (typeof JOB_STATES)[number];
export const TERMINAL_STATES: readonly JobState[] = ['completed', 'failed', 'canceled'];

/** A step run in a container image; `commands` become the lines of a `/bin/sh` script. */
export const DockerStep = z.object({
  key: z.string().max(200).optional(),
  image: z.string().max(1000),
  commands: z.array(z.string().max(1 << 20)).max(10_000),
  dir: z.string().max(4096).optional().default(''),
  env: z.array(z.string().max(1 << 16)).max(10_000).nullish(),
});
export type DockerStep = z.infer<typeof DockerStep>;

/** A src-cli step (legacy batches path). Note the singular field name `command`. */
export const CliStep = z.object({
  key: z.string().max(200).optional(),
  command: z.array(z.string()).max(10_000),
  dir: z.string().max(4096).optional().default(''),
  env: z.array(z.string()).max(10_000).nullish(),
});
export type CliStep = z.infer<typeof CliStep>;

/** `{"auths": {registry: {"auth": base64("user:password")}}}` */
export const DockerAuthConfig = z.object({
  auths: z.record(z.string(), z.object({ auth: z.string() })).optional(),
});
export type DockerAuthConfig = z.infer<typeof DockerAuthConfig>;

export const ZERO_TIME = '0001-01-01T00:00:00Z';

/**
 * A file to write into the workspace. On the v1 wire `content` is plain text, on v2 it is base64.
 * Either `content` or `bucket` + `key` (fetched through the files API); neither means an empty file.
 */
export const WireFile = z.object({
  content: z.string().optional(),
  bucket: z.string().optional(),
  key: z.string().optional(),
  modifiedAt: z.string().optional(),
});
export type WireFile = z.infer<typeof WireFile>;

/** The Job payload as sent by dequeue, v1 and v2. */
export const WireJob = z.object({
  version: z.number().int().optional(),
  id: z.number().int(),
  token: z.string().default(''),
  queue: z.string().optional(),
  repositoryName: z.string().default(''),
  repositoryDirectory: z.string().default(''),
  commit: z.string().default(''),
  fetchTags: z.boolean().default(false),
  shallowClone: z.boolean().default(false),
  sparseCheckout: z.array(z.string()).nullish(),
  files: z.record(z.string(), WireFile).nullish(),
  dockerSteps: z.array(DockerStep).nullish(),
  cliSteps: z.array(CliStep).nullish(),
  redactedValues: z.record(z.string(), z.string()).nullish(),
  dockerAuthConfig: DockerAuthConfig.nullish(),
});
export type WireJob = z.infer<typeof WireJob>;
