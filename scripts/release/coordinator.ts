import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleCjs, EXECUTOR_ENTRY, REPO_ROOT } from './bundle.js';

/**
 * The coordinator release: a directory, packed as `sandfleet-<version>.tar.gz`, that needs only a
 * `node` (>= 20.19) on the host. A tarball rather than a single executable because PGlite loads its
 * WebAssembly module and data files from beside its own code, and the UI serves files read from
 * disk: shipped as files they are used unchanged, with nothing to rewrite in either. Layout:
 *
 *   bin/sandfleet                      launcher: runs lib/sandfleet/sandfleet.cjs with node
 *   lib/sandfleet/sandfleet.cjs        the bundled CLI (`serve`, `migrate`, client commands, `up`)
 *   lib/sandfleet/static/              the UI's own static files
 *   node_modules/@electric-sql/pglite  the embedded database, as published
 *   node_modules/htmx.org              the one file of it the UI serves
 *   node_modules/@sandfleet/executor   the bundled executor `sandfleet up` starts
 *   package.json                       the version `sandfleet --version` prints
 */

const COORDINATOR_ENTRY = `
import { main } from './packages/coordinator/src/cli/main.js';
main(process.argv).catch((err) => {
  process.stderr.write(\`\${err instanceof Error ? (err.stack ?? err.message) : String(err)}\\n\`);
  process.exit(1);
});
`;

const LAUNCHER = `#!/bin/sh
# Runs the bundled coordinator with the node on PATH (>= 20.19); nothing else is needed.
here=$(dirname "$(readlink -f "$0")")
exec node "$here/../lib/sandfleet/sandfleet.cjs" "$@"
`;

export function coordinatorArtifact(version: string): string {
  return `sandfleet-${version}.tar.gz`;
}

export function coordinatorVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'packages/coordinator/package.json'), 'utf8')) as { version: string }).version;
}

/** Builds the directory `sandfleet-<version>` under `stageDir` and returns its path. */
export async function stageCoordinatorBundle(options: { stageDir: string; version: string; commit: string }): Promise<string> {
  const root = path.join(options.stageDir, `sandfleet-${options.version}`);
  fs.rmSync(root, { recursive: true, force: true });
  const lib = path.join(root, 'lib/sandfleet');
  await bundleCjs({ entry: COORDINATOR_ENTRY, outfile: path.join(lib, 'sandfleet.cjs'), commit: options.commit, external: ['@electric-sql/pglite', 'pg-native'] });
  fs.cpSync(path.join(REPO_ROOT, 'packages/coordinator/src/ui/static'), path.join(lib, 'static'), { recursive: true });

  const modules = path.join(root, 'node_modules');
  const pglite = path.join(REPO_ROOT, 'node_modules/@electric-sql/pglite');
  fs.cpSync(pglite, path.join(modules, '@electric-sql/pglite'), { recursive: true, filter: (src) => !src.endsWith('.map') && !src.endsWith('.d.ts') && !src.endsWith('.d.cts') });
  const htmx = path.join(REPO_ROOT, 'node_modules/htmx.org');
  fs.mkdirSync(path.join(modules, 'htmx.org/dist'), { recursive: true });
  fs.copyFileSync(path.join(htmx, 'package.json'), path.join(modules, 'htmx.org/package.json'));
  fs.copyFileSync(path.join(htmx, 'dist/htmx.min.js'), path.join(modules, 'htmx.org/dist/htmx.min.js'));

  // Run by `node` rather than as a single executable: the seccomp compiler sits beside it.
  const executor = path.join(modules, '@sandfleet/executor');
  await bundleCjs({ entry: EXECUTOR_ENTRY, outfile: path.join(executor, 'bin/executor.js'), commit: options.commit });
  fs.copyFileSync(path.join(REPO_ROOT, 'packages/executor/src/sandbox/shared/seccomp-bpf.py'), path.join(executor, 'bin/seccomp-bpf.py'));
  writeJson(path.join(executor, 'package.json'), { name: '@sandfleet/executor', version: options.version, private: true, type: 'commonjs' });

  writeJson(path.join(root, 'package.json'), { name: 'sandfleet', version: options.version, private: true, commit: options.commit });
  fs.mkdirSync(path.join(root, 'bin'), { recursive: true });
  fs.writeFileSync(path.join(root, 'bin/sandfleet'), LAUNCHER, { mode: 0o755 });
  return root;
}

/** Writes `sandfleet-<version>.tar.gz` into `outDir`; returns its path. */
export async function buildCoordinatorBundle(options: { outDir: string; version: string; commit: string }): Promise<string> {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'sandfleet-release-'));
  try {
    const root = await stageCoordinatorBundle({ stageDir: stage, ...options });
    const tarball = path.join(options.outDir, coordinatorArtifact(options.version));
    fs.mkdirSync(options.outDir, { recursive: true });
    // Reproducible: sorted names, fixed times and owners.
    execFileSync('tar', ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '-C', stage, '-czf', `${tarball}.tmp`, path.basename(root)]);
    fs.renameSync(`${tarball}.tmp`, tarball);
    return tarball;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}
