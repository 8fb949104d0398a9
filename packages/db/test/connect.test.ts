import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { BACKENDS, DataDirInUseError, openDatabase, type DbConfig } from '../src/index.js';
import { createTestDatabase, describeEachBackend, itEmbedded, itMultiConnection, type TestDatabase } from '@sandfleet/test-helpers/db';

const SRC_INDEX = pathToFileURL(new URL('../src/index.ts', import.meta.url).pathname).href;

/**
 * Opens and closes a Database in a child process; rejects if the child has not exited within 30 s.
 * The script is a file, not `-e`: an unclosed PGlite kept a file-run process alive where `-e` exited.
 */
async function openAndCloseInChild(config: DbConfig): Promise<void> {
  const script = [
    `import { openDatabase } from ${JSON.stringify(SRC_INDEX)};`,
    `const database = await openDatabase(${JSON.stringify(config)});`,
    `await database.close();`,
  ].join('\n');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-exit-'));
  try {
    const file = path.join(dir, 'open-close.mjs');
    await fs.writeFile(file, script);
    await promisify(execFile)(process.execPath, ['--import', 'tsx', file], { timeout: 30_000 });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

describeEachBackend('openDatabase', (ctx) => {
  it('reports the backend profile as data', async () => {
    assert.deepEqual(ctx.database.backend, BACKENDS[ctx.backend]);
    const { rows } = await sql<{ n: number }>`SELECT 41 + 1 AS n`.execute(ctx.db);
    assert.equal(rows[0]!.n, 42);
  });

  it('a Database closed without being used still closes PGlite and lets the process exit', { timeout: 90_000 }, async () => {
    // PGlite: the shared test database holds its data dir, so the children get a copy of their own.
    let scratch: TestDatabase | undefined;
    if (ctx.profile.kind === 'embedded') scratch = await createTestDatabase(ctx.backend);
    try {
      const config = scratch?.config ?? ctx.testDatabase.config;
      // Unused on purpose: Kysely only destroys a driver a query initialised. (A used Database
      // closing cleanly is proven by every test file: its process would not exit otherwise.)
      await openAndCloseInChild(config);
      // PGlite removes postmaster.pid on a clean close; left behind, the next open must recover
      // the dir, and a process that opened such a dir was seen not to exit.
      if (scratch?.dataDir) await assert.rejects(fs.access(path.join(scratch.dataDir, 'postmaster.pid')), 'PGlite was closed');
    } finally {
      await scratch?.drop();
    }
  });

  itMultiConnection(ctx, 'close is idempotent and ends the pool', async () => {
    const other = await ctx.openAnother();
    await other.close();
    await other.close();
    await assert.rejects(sql`SELECT 1`.execute(other.db));
  });

  itEmbedded(ctx, 'refuses a data directory another open Database holds, and frees it on close', async () => {
    await assert.rejects(openDatabase(ctx.testDatabase.config), DataDirInUseError);
    const scratch = await createTestDatabase(ctx.backend);
    try {
      const first = await openDatabase(scratch.config);
      await assert.rejects(openDatabase(scratch.config), DataDirInUseError);
      await first.close();
      const second = await openDatabase(scratch.config);
      await second.close();
    } finally {
      await scratch.drop();
    }
  });

  it('fails fast with a clear error when the server is unreachable', async () => {
    await assert.rejects(openDatabase({ kind: 'postgres', url: 'postgres://nobody@127.0.0.1:1/none' }), /ECONNREFUSED/);
  });
});
