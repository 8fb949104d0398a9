import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

/** The repository root (scripts/release/ is two levels below it). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The executor's entry point, as bin/executor.js without tsx. */
export const EXECUTOR_ENTRY = `
import { main } from './packages/executor/src/cli/main.js';
// Exit explicitly, as bin/executor.js does: idle keep-alive sockets must not hold a drained executor open.
main(process.argv).then((code) => process.exit(code));
`;

/**
 * One CommonJS file for a Node entry point. CommonJS because a single-executable application runs
 * one CommonJS script; sources that locate files with `import.meta.url` get the bundle's own URL.
 */
export async function bundleCjs(options: { entry: string; outfile: string; commit: string; external?: string[] }): Promise<void> {
  try {
    await build(options);
  } finally {
    // esbuild's service process would otherwise outlive the build.
    await esbuild.stop();
  }
}

async function build(options: { entry: string; outfile: string; commit: string; external?: string[] }): Promise<void> {
  await esbuild.build({
    stdin: { contents: options.entry, resolveDir: REPO_ROOT, sourcefile: 'release-entry.ts', loader: 'ts' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: options.outfile,
    external: options.external ?? [],
    define: { 'import.meta.url': 'import_meta_url', __SANDFLEET_COMMIT__: JSON.stringify(options.commit) },
    banner: { js: "const import_meta_url = require('node:url').pathToFileURL(__filename).href;" },
    legalComments: 'none',
    logLevel: 'warning',
  });
}

/** HEAD of the checkout, with `-dirty` when tracked files differ from it. */
export function sourceCommit(root = REPO_ROOT): string {
  const git = (...args: string[]) => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8' }).trim();
  const head = git('rev-parse', 'HEAD');
  return git('status', '--porcelain', '--untracked-files=no') === '' ? head : `${head}-dirty`;
}
