import assert from 'node:assert/strict';
import { it } from 'node:test';
import { sql } from 'kysely';
import {
  addRepository,
  countAdminTokens,
  createAdminToken,
  deleteAdminToken,
  deleteStaleExecutors,
  executorExists,
  getExecutor,
  getRepository,
  listAdminTokens,
  listExecutors,
  listRepositories,
  removeRepository,
  sqlState,
  SQLSTATE,
  upsertExecutorHeartbeat,
  verifyAdminToken,
} from '../src/index.js';
import { describeEachBackend } from '@sandfleet/test-helpers/db';

const HEARTBEAT = {
  hostname: 'host-1-0b5e',
  queueName: 'batches',
  os: 'linux',
  architecture: 'amd64',
  dockerVersion: '24.0.7',
  executorVersion: '5.2.0',
  gitVersion: '2.43.0',
  igniteVersion: '',
  srcCliVersion: '5.2.0',
  prometheusMetrics: '# HELP x\nx 1\n',
};

describeEachBackend('executors registry', (ctx) => {
  it('inserts on the first heartbeat and updates every field later, keeping first_seen_at', async () => {
    const first = await upsertExecutorHeartbeat(ctx.db, HEARTBEAT);
    assert.equal(first.hostname, HEARTBEAT.hostname);
    assert.equal(first.queueName, 'batches');
    assert.equal(first.queueNames, null);
    assert.equal(first.prometheusMetrics, HEARTBEAT.prometheusMetrics);
    await sql`UPDATE executor_heartbeats SET first_seen_at = now() - interval '1 hour', last_seen_at = now() - interval '1 hour'`.execute(ctx.db);
    const aged = (await getExecutor(ctx.db, HEARTBEAT.hostname))!;

    const names = ['batches', 'codeintel', 'with,comma', 'with "quote"', '{brace}'];
    const second = await upsertExecutorHeartbeat(ctx.db, { ...HEARTBEAT, queueName: undefined, queueNames: names, gitVersion: '2.44.0' });
    assert.equal(second.id, first.id);
    assert.deepEqual(second.queueNames, names);
    assert.equal(second.queueName, null);
    assert.equal(second.gitVersion, '2.44.0');
    assert.equal(second.firstSeenAt.getTime(), aged.firstSeenAt.getTime(), 'first_seen_at is set only on insert');
    assert.ok(second.lastSeenAt > aged.lastSeenAt, 'last_seen_at moves to now');
  });

  it('requires exactly one of queueName and queueNames', async () => {
    const { queueName: _omit, ...noQueue } = HEARTBEAT;
    await assert.rejects(upsertExecutorHeartbeat(ctx.db, noQueue), (err) => sqlState(err) === SQLSTATE.CHECK_VIOLATION);
    await assert.rejects(
      upsertExecutorHeartbeat(ctx.db, { ...HEARTBEAT, queueNames: ['a'] }),
      (err) => sqlState(err) === SQLSTATE.CHECK_VIOLATION,
    );
  });

  it('lists most recently seen first, answers exists, and the janitor deletes stale rows only', async () => {
    await upsertExecutorHeartbeat(ctx.db, { ...HEARTBEAT, hostname: 'old' });
    await upsertExecutorHeartbeat(ctx.db, { ...HEARTBEAT, hostname: 'new' });
    await sql`UPDATE executor_heartbeats SET last_seen_at = now() - interval '8 days' WHERE hostname = 'old'`.execute(ctx.db);
    assert.deepEqual((await listExecutors(ctx.db)).map((e) => e.hostname), ['new', 'old']);
    assert.equal(await executorExists(ctx.db, 'old'), true);
    assert.equal(await executorExists(ctx.db, 'never-seen'), false);

    assert.equal(await deleteStaleExecutors(ctx.db, 168 * 3_600_000), 1);
    assert.equal(await executorExists(ctx.db, 'old'), false);
    assert.equal(await executorExists(ctx.db, 'new'), true);
    assert.equal(await deleteStaleExecutors(ctx.db, 168 * 3_600_000), 0);
  });
});

describeEachBackend('admin tokens', (ctx) => {
  it('creates a token shown once, verifies it by hash, lists and revokes it', async () => {
    assert.equal(await countAdminTokens(ctx.db), 0);
    const { token, record } = await createAdminToken(ctx.db, { description: 'ci' });
    assert.match(token, /^sfa_[0-9a-f]{64}$/);
    // A use records when the token was last used; the rest of the record is what was created.
    const verified = await verifyAdminToken(ctx.db, token);
    assert.deepEqual({ ...verified, lastUsedAt: null }, record);
    assert.ok(verified?.lastUsedAt instanceof Date, 'the use is recorded');
    assert.equal(await verifyAdminToken(ctx.db, token.slice(0, -1)), undefined);
    assert.equal(await verifyAdminToken(ctx.db, ''), undefined);
    const stored = await sql<{ hex: string }>`SELECT encode(value_sha256, 'hex') AS hex FROM admin_tokens`.execute(ctx.db);
    assert.ok(!stored.rows[0]!.hex.includes(token.slice(4)), 'the plaintext is not stored');

    const other = await createAdminToken(ctx.db, { description: 'ops' });
    assert.deepEqual((await listAdminTokens(ctx.db)).map((t) => t.description), ['ci', 'ops']);
    assert.equal(await deleteAdminToken(ctx.db, record.id), true);
    assert.equal(await deleteAdminToken(ctx.db, record.id), false);
    assert.equal(await verifyAdminToken(ctx.db, token), undefined);
    assert.ok(await verifyAdminToken(ctx.db, other.token));
    assert.equal(await countAdminTokens(ctx.db), 1);
  });
});

describeEachBackend('repositories', (ctx) => {
  it('adds, updates the source, lists by name and removes', async () => {
    const added = await addRepository(ctx.db, { name: 'github.com/b/two', source: '/srv/git/two.git' });
    await addRepository(ctx.db, { name: 'github.com/a/one', source: 'https://example.invalid/one.git' });
    assert.deepEqual(await getRepository(ctx.db, 'github.com/b/two'), added);
    const moved = await addRepository(ctx.db, { name: 'github.com/b/two', source: '/srv/git/moved.git' });
    assert.equal(moved.source, '/srv/git/moved.git');
    assert.equal(moved.createdAt.getTime(), added.createdAt.getTime());
    assert.deepEqual((await listRepositories(ctx.db)).map((r) => r.name), ['github.com/a/one', 'github.com/b/two']);
    assert.equal(await removeRepository(ctx.db, 'github.com/a/one'), true);
    assert.equal(await removeRepository(ctx.db, 'github.com/a/one'), false);
    assert.equal(await getRepository(ctx.db, 'github.com/a/one'), undefined);
  });
});
