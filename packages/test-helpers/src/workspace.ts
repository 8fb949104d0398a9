import fs from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir } from './temp-dirs.js';

/** A fresh, empty workspace directory, as a sandbox is prepared with. */
export async function emptyWorkspace(): Promise<string> {
  return makeTempDir('sandfleet-ws-');
}

/** Writes step scripts under `<dir>/.sourcegraph-executor/` (a prepared sandbox's workspace). */
export async function writeScripts(dir: string, scripts: Record<string, string>): Promise<void> {
  await fs.mkdir(path.join(dir, '.sourcegraph-executor'), { recursive: true });
  for (const [name, body] of Object.entries(scripts)) {
    await fs.writeFile(path.join(dir, '.sourcegraph-executor', name), `set -e\n${body}\n`);
  }
}

/** A fresh workspace directory with step scripts under `.sourcegraph-executor/`. */
export async function makeWorkspace(scripts: Record<string, string>): Promise<string> {
  const dir = await emptyWorkspace();
  await writeScripts(dir, scripts);
  return dir;
}
