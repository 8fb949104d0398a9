import { z } from 'zod';
import { CliStep, DockerAuthConfig, DockerStep, QueueNameSyntax } from '@sandfleet/protocol';
import type { JobSpec } from '@sandfleet/db';

/**
 * What a user submits (POST /api/jobs): the Job payload's fields without the executor-side ones
 * (id, token, version). Strict: unknown fields are refused so typos do not pass silently.
 */
const SpecFile = z
  .object({
    /** UTF-8 text. */
    content: z.string().max(8 << 20).optional(),
    /** Binary content, base64 (what the v2 wire carries). */
    contentBase64: z.base64().max(12 << 20).optional(),
    bucket: z.string().max(1000).optional(),
    key: z.string().max(1000).optional(),
    modifiedAt: z.iso.datetime({ offset: true }).optional(),
  })
  .strict()
  .refine((f) => !(f.content !== undefined && f.contentBase64 !== undefined), 'give content or contentBase64, not both');

export const JobSpecInput = z
  .object({
    /** Whether this coordinator serves the queue is checked on submission (the queue catalog). */
    queue: QueueNameSyntax,
    priority: z.number().int().min(-1000).max(1000).optional(),
    repositoryName: z.string().max(500).default(''),
    repositoryDirectory: z.string().max(4096).default(''),
    commit: z.string().max(200).default(''),
    fetchTags: z.boolean().default(false),
    shallowClone: z.boolean().default(false),
    sparseCheckout: z.array(z.string().max(4096)).max(1000).nullish(),
    files: z.record(z.string().min(1).max(4096), SpecFile).default({}),
    dockerSteps: z.array(DockerStep.strict()).max(1000).nullish(),
    cliSteps: z.array(CliStep.strict()).max(1000).nullish(),
    redactedValues: z.record(z.string(), z.string()).nullish(),
    dockerAuthConfig: DockerAuthConfig.nullish(),
  })
  .strict()
  .superRefine((spec, ctx) => {
    for (const path of unstorableTextPaths(spec)) {
      ctx.addIssue({ code: 'custom', path, message: 'text must not contain NUL characters or unpaired UTF-16 surrogates' });
    }
    if (spec.commit !== '' && spec.repositoryName === '') {
      ctx.addIssue({ code: 'custom', path: ['repositoryName'], message: 'a commit needs a repositoryName' });
    }
    if (spec.repositoryName !== '' && spec.commit === '') {
      ctx.addIssue({ code: 'custom', path: ['commit'], message: 'a repositoryName needs a commit to check out' });
    }
    for (const path of Object.keys(spec.files)) {
      if (!isSafeRelativePath(path)) {
        ctx.addIssue({ code: 'custom', path: ['files', path], message: 'file paths must be relative and stay inside the workspace' });
      }
    }
    if (spec.repositoryDirectory !== '' && !isSafeRelativePath(spec.repositoryDirectory)) {
      ctx.addIssue({ code: 'custom', path: ['repositoryDirectory'], message: 'must be relative and stay inside the workspace' });
    }
    spec.dockerSteps?.forEach((step, i) => {
      if (step.dir && !isSafeRelativePath(step.dir)) {
        ctx.addIssue({ code: 'custom', path: ['dockerSteps', i, 'dir'], message: 'must be relative and stay inside the workspace' });
      }
    });
  });
export type JobSpecInput = z.infer<typeof JobSpecInput>;

const UNSTORABLE = /\0|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Where a spec holds text PostgreSQL cannot store (jsonb has no NUL, UTF-8 no lone surrogate):
 * such a spec is refused rather than altered, since it is a program to run.
 */
function unstorableTextPaths(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (typeof value === 'string') return UNSTORABLE.test(value) ? [path] : [];
  if (Array.isArray(value)) return value.flatMap((item, i) => unstorableTextPaths(item, [...path, i]));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, item]) => [
    ...(UNSTORABLE.test(key) ? [[...path, key]] : []),
    ...unstorableTextPaths(item, [...path, key]),
  ]);
}

/**
 * The spec as stored is the v2 Job payload without id/token/queue: file content in base64, so the
 * v1 payload (plain text) and the v2 payload (base64) both derive from it.
 */
export function toStoredSpec(input: JobSpecInput): JobSpec {
  const files: NonNullable<JobSpec['files']> = {};
  for (const [path, f] of Object.entries(input.files)) {
    const content = f.contentBase64 ?? (f.content !== undefined ? Buffer.from(f.content, 'utf8').toString('base64') : undefined);
    files[path] = dropUndefined({ content, bucket: f.bucket, key: f.key, modifiedAt: f.modifiedAt });
  }
  return {
    repositoryName: input.repositoryName,
    repositoryDirectory: input.repositoryDirectory,
    commit: input.commit,
    fetchTags: input.fetchTags,
    shallowClone: input.shallowClone,
    sparseCheckout: input.sparseCheckout ?? null,
    files,
    dockerSteps: input.dockerSteps ?? null,
    cliSteps: input.cliSteps ?? null,
    redactedValues: input.redactedValues ?? null,
    dockerAuthConfig: input.dockerAuthConfig ?? null,
  };
}

/** Relative, no `..` segment, no NUL: a path that cannot leave the workspace by itself. */
export function isSafeRelativePath(p: string): boolean {
  if (p.startsWith('/') || p.startsWith('\\') || p.includes('\0')) return false;
  return !p.split(/[\\/]/).some((segment) => segment === '..');
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
