import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { SandfleetError } from '@sandfleet/protocol';

/**
 * Writing job files into a workspace without ever writing outside it (docs/protocol.md, "Workspace and clone"). A
 * job's paths are untrusted, and so is the repository checked out before them: an absolute path,
 * `..`, or a symlink in the repo (`docs -> /etc`) must not take a write out of the workspace.
 */

/** Raised for a path that leaves the workspace, whichever way it tries. */
export class PathEscapeError extends SandfleetError {
  constructor(readonly requestedPath: string) {
    super('refusing to write outside of working directory');
  }
}

/**
 * The absolute path of `relative` inside `root`, checked lexically: absolute paths and paths that climb
 * out with `..` are refused. `allowRoot` accepts the root itself (for a repository directory of '').
 */
export function resolveInside(root: string, relative: string, allowRoot = false): string {
  if (path.isAbsolute(relative)) throw new PathEscapeError(relative);
  const target = path.resolve(root, relative);
  const rel = path.relative(root, target);
  if (rel === '' ? !allowRoot : rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    throw new PathEscapeError(relative);
  }
  return target;
}

function isInside(rootReal: string, candidateReal: string): boolean {
  const rel = path.relative(rootReal, candidateReal);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Creates `relativeDir` (and its parents) under `root`, one component at a time, refusing as soon as
 * an existing component resolves (through symlinks) to somewhere outside the workspace. Returns the
 * directory's absolute path.
 */
export async function ensureDirectoryInside(root: string, relativeDir: string, requestedPath = relativeDir): Promise<string> {
  const rootReal = await fs.realpath(root);
  const target = resolveInside(root, relativeDir, true);
  let current = root;
  for (const part of path.relative(root, target).split(path.sep).filter(Boolean)) {
    current = path.join(current, part);
    try {
      await fs.mkdir(current, { mode: 0o777 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // An existing symlink is followed only when it stays inside the workspace.
    if (!isInside(rootReal, await fs.realpath(current))) throw new PathEscapeError(requestedPath);
  }
  return target;
}

export interface WorkspaceFileContent {
  /** The bytes, or a stream of them (files fetched from the files API). */
  content: Buffer | Readable;
  /** Set as the file's mtime and atime when given. */
  modifiedAt?: Date | undefined;
}

/**
 * Writes one file at `relativePath` under `root` with mode 0777 (step scripts must be executable), after
 * the path checks above. The final component is opened with O_NOFOLLOW, so a planted symlink fails.
 */
export async function writeWorkspaceFile(root: string, relativePath: string, file: WorkspaceFileContent): Promise<string> {
  const target = resolveInside(root, relativePath);
  await ensureDirectoryInside(root, path.dirname(path.relative(root, target)), relativePath);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o777);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new PathEscapeError(relativePath);
    throw err;
  }
  try {
    if (Buffer.isBuffer(file.content)) await handle.writeFile(file.content);
    else for await (const chunk of file.content) await handle.write(chunk as Buffer);
    await handle.chmod(0o777);
  } finally {
    await handle.close();
  }
  if (file.modifiedAt) await fs.utimes(target, file.modifiedAt, file.modifiedAt);
  return target;
}

/**
 * Parses a wire `modifiedAt`. Go sends the zero time (`0001-01-01T00:00:00Z`) for "unset", so any time
 * in year 1 or earlier, and anything unparsable, means no timestamp.
 */
export function parseModifiedAt(value: string | undefined): Date | undefined {
  if (!value) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime()) || date.getUTCFullYear() <= 1) return undefined;
  return date;
}
