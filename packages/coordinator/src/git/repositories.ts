import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { SandfleetError } from '@sandfleet/protocol';

const execFileAsync = promisify(execFile);

export const RepositoryInput = z
  .object({
    name: z
      .string()
      .min(1)
      .max(500)
      .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'use letters, digits, ".", "_", "-" and "/" (like github.com/org/repo)')
      .refine((n) => !n.split('/').some((s) => s === '.' || s === '..'), 'no "." or ".." segments'),
    source: z.string().min(1).max(4096),
  })
  .strict();
export type RepositoryInput = z.infer<typeof RepositoryInput>;

export class RepositorySourceError extends SandfleetError {
  constructor(message: string) {
    super(message);
  }
}

const REMOTE = /^(https?|git|ssh|file):\/\/|^[\w.-]+@[\w.-]+:/;

/**
 * Resolves where a registered repository is served from. A local path is served in place; a URL is
 * mirrored once into the data directory (`git clone --mirror`) and refreshed on re-registration.
 * git runs with only the configured PATH (and never prompts).
 */
export async function resolveRepositorySource(input: RepositoryInput, where: { dataDir: string; gitSearchPath: string }): Promise<string> {
  const { dataDir } = where;
  const env = { PATH: where.gitSearchPath, GIT_TERMINAL_PROMPT: '0' };
  if (REMOTE.test(input.source)) {
    const mirror = path.join(dataDir, 'repos', `${input.name}.git`);
    const exists = await fs.stat(mirror).then(() => true, () => false);
    try {
      if (exists) await execFileAsync('git', ['-C', mirror, 'remote', 'update', '--prune'], { env });
      else {
        await fs.mkdir(path.dirname(mirror), { recursive: true });
        await execFileAsync('git', ['clone', '--mirror', '--quiet', input.source, mirror], { env });
      }
    } catch (err) {
      throw new RepositorySourceError(`cannot mirror ${input.source}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`);
    }
    return mirror;
  }
  if (!path.isAbsolute(input.source)) throw new RepositorySourceError('a local source must be an absolute path');
  try {
    await execFileAsync('git', ['-C', input.source, 'rev-parse', '--git-dir'], { env });
  } catch {
    throw new RepositorySourceError(`${input.source} is not a git repository`);
  }
  return input.source;
}
