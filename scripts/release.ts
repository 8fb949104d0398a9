/**
 * `npm run release`: the release artifacts under dist/ (or `--out DIR`):
 *   executor-linux-amd64        the standalone executor (scripts/release/executor.ts)
 *   sandfleet-<version>.tar.gz  the coordinator bundle (scripts/release/coordinator.ts)
 *   SHA256SUMS                  `sha256sum -c SHA256SUMS` checks both
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, sourceCommit } from './release/bundle.js';
import { buildCoordinatorBundle, coordinatorVersion } from './release/coordinator.js';
import { buildExecutorBinary, EXECUTOR_ARTIFACT } from './release/executor.js';

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The `sha256sum` format: `<hex>  <name>`, one line per file. */
export async function writeSums(dir: string, files: string[]): Promise<string> {
  const lines: string[] = [];
  for (const file of files) lines.push(`${await sha256(file)}  ${path.basename(file)}`);
  const sums = path.join(dir, 'SHA256SUMS');
  fs.writeFileSync(sums, `${lines.join('\n')}\n`);
  return sums;
}

async function release(outDir: string): Promise<void> {
  const commit = sourceCommit();
  const version = coordinatorVersion();
  if (commit.endsWith('-dirty')) process.stderr.write(`warning: the checkout has uncommitted changes; the artifacts say commit ${commit}\n`);
  const executor = path.join(outDir, EXECUTOR_ARTIFACT);
  await buildExecutorBinary({ outFile: executor, commit });
  process.stdout.write(`${executor}\n`);
  const tarball = await buildCoordinatorBundle({ outDir, version, commit });
  process.stdout.write(`${tarball}\n`);
  process.stdout.write(`${await writeSums(outDir, [executor, tarball])}\n`);
}

const { values } = parseArgs({ options: { out: { type: 'string', default: path.join(REPO_ROOT, 'dist') } } });
await release(path.resolve(values.out!));
