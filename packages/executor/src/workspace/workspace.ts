import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { WireJob } from '@sandfleet/protocol';
import { openStepLog, type JobLogContext } from '../logs/logged-command.js';
import { buildStepScript, stepScriptPath } from './step-script.js';
import { parseModifiedAt, resolveInside, writeWorkspaceFile } from './files.js';

/**
 * A job's workspace: a fresh directory, the repository (clone.ts), the job's files and the step
 * scripts. Every step of the setup is its own log entry.
 */

export interface Workspace {
  /** Absolute path of the workspace root. */
  readonly dir: string;
  remove(): Promise<void>;
}

/** Creates `<parentDir>/workspace-<jobId>-XXXXXX`. */
export async function createWorkspace(parentDir: string, jobId: number): Promise<Workspace> {
  await fs.mkdir(parentDir, { recursive: true });
  const dir = await fs.mkdtemp(path.join(parentDir, `workspace-${jobId}-`));
  return { dir, remove: () => fs.rm(dir, { recursive: true, force: true }) };
}

export interface WriteFilesOptions {
  workspaceDir: string;
  /** Fetches a `bucket`/`key` file from the files API. */
  getFile: (bucket: string, key: string, signal: AbortSignal) => Promise<Readable>;
}

type FileFields = Pick<WireJob, 'id' | 'version' | 'files' | 'dockerSteps' | 'repositoryName' | 'commit'>;

/**
 * Writes the job's `files` and one script per docker step, as the log entry `setup.fs.extras`.
 * Returns the step scripts' paths relative to the workspace, by step index.
 */
export async function writeJobFiles(ctx: JobLogContext, job: FileFields, options: WriteFilesOptions, signal: AbortSignal): Promise<string[]> {
  const files = Object.entries(job.files ?? {});
  const steps = job.dockerSteps ?? [];
  if (files.length === 0 && steps.length === 0) return [];
  const entry = openStepLog(ctx, 'setup.fs.extras', []);
  try {
    for (const [relativePath, file] of files) {
      const started = Date.now();
      // Check the path before fetching anything for it.
      resolveInside(options.workspaceDir, relativePath);
      const content =
        file.bucket && file.key
          ? await options.getFile(file.bucket, file.key, signal)
          : Buffer.from(file.content ?? '', job.version === 2 ? 'base64' : 'utf8');
      await writeWorkspaceFile(options.workspaceDir, relativePath, { content, modifiedAt: parseModifiedAt(file.modifiedAt) });
      entry.writeLine(`Wrote ${relativePath} in ${Date.now() - started}ms`);
    }
    const scripts = steps.map((_, i) => stepScriptPath(job, i));
    for (const [i, step] of steps.entries()) {
      await writeWorkspaceFile(options.workspaceDir, scripts[i]!, { content: Buffer.from(buildStepScript(step.commands)) });
      entry.writeLine(`Wrote ${scripts[i]}`);
    }
    await entry.finish(0);
    return scripts;
  } catch (err) {
    entry.writeLine(err instanceof Error ? err.message : String(err));
    // A failed upload of this entry must not hide the original error.
    await entry.finish(1).catch(() => {});
    throw err;
  }
}
