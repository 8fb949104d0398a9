import fs from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir } from './temp-dirs.js';

/** A fresh workspace directory with step scripts under `.sourcegraph-executor/`. */
export async function makeWorkspace(scripts: Record<string, string>): Promise<string> {
  const dir = makeTempDir('sandfleet-ws-');
  await fs.mkdir(path.join(dir, '.sourcegraph-executor'));
  for (const [name, body] of Object.entries(scripts)) {
    await fs.writeFile(path.join(dir, '.sourcegraph-executor', name), `set -e\n${body}\n`);
  }
  return dir;
}
