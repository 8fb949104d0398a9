import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { bundleCjs, EXECUTOR_ENTRY, REPO_ROOT } from './bundle.js';

/**
 * The standalone `executor`: a Node single-executable application. The bundled CLI and the files it
 * reads at run time (see packages/executor/src/assets.ts) are injected into a copy of the node
 * binary running this build, so the worker needs neither a checkout, nor node_modules, nor npm —
 * not even a node of its own.
 */

/** The fuse Node looks for to know a blob was injected (Node's single-executable docs). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** Files read next to the sources, embedded under their file names. */
const ASSETS = ['packages/executor/src/sandbox/shared/seccomp-bpf.py', 'packages/executor/src/sandbox/vm/firecracker/firecracker-api.yaml'];

export const EXECUTOR_ARTIFACT = 'executor-linux-amd64';

const POSTJECT_CLI = createRequire(import.meta.url).resolve('postject/dist/cli.js');

/** Runs a build step, its output shown only when it fails. */
function quietly(command: string, args: string[]): void {
  try {
    execFileSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (err) {
    const { stdout = '', stderr = '' } = err as { stdout?: string; stderr?: string };
    throw new Error(`${path.basename(command)} ${args.join(' ')} failed:\n${stdout}${stderr}`, { cause: err });
  }
}

export async function buildExecutorBinary(options: { outFile: string; commit: string }): Promise<void> {
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`the executor binary is built for linux-amd64 from a node of that platform (this is ${process.platform}-${process.arch})`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sandfleet-release-'));
  try {
    const script = path.join(work, 'executor.cjs');
    await bundleCjs({ entry: EXECUTOR_ENTRY, outfile: script, commit: options.commit });
    const blob = path.join(work, 'executor.blob');
    const seaConfig = path.join(work, 'sea-config.json');
    const assets = Object.fromEntries(ASSETS.map((file) => [path.basename(file), path.join(REPO_ROOT, file)]));
    fs.writeFileSync(seaConfig, JSON.stringify({ main: script, output: blob, disableExperimentalSEAWarning: true, assets }));
    quietly(process.execPath, ['--experimental-sea-config', seaConfig]);

    const binary = path.join(work, 'executor');
    fs.copyFileSync(process.execPath, binary);
    fs.chmodSync(binary, 0o755);
    // postject's ELF writer prints warnings about note sections it leaves as they are: shown only on failure.
    quietly(process.execPath, [POSTJECT_CLI, binary, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE]);
    fs.mkdirSync(path.dirname(options.outFile), { recursive: true });
    fs.copyFileSync(binary, `${options.outFile}.tmp`);
    fs.renameSync(`${options.outFile}.tmp`, options.outFile);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
