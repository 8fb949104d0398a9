import assert from 'node:assert/strict';
import { it } from 'node:test';
import { sql } from 'kysely';
import { createUiSession, deleteExpiredUiSessions, deleteUiSession, findUiSession } from '../src/index.js';
import { describeEachBackend } from '@sandfleet/test-helpers/db';

describeEachBackend('web UI sessions', (ctx) => {
  it('stores only the hash, finds a live session by its cookie, forgets it on sign-out', async () => {
    const { cookieValue, session } = await createUiSession(ctx.db, 60_000);
    assert.match(cookieValue, /^[0-9a-f]{64}$/);
    const stored = await sql<{ value_sha256: Uint8Array }>`SELECT value_sha256 FROM ui_sessions`.execute(ctx.db);
    assert.ok(!Buffer.from(stored.rows[0]!.value_sha256).toString('hex').includes(cookieValue));
    assert.deepEqual(await findUiSession(ctx.db, cookieValue), session);
    assert.equal(await findUiSession(ctx.db, cookieValue.replace(/.$/, (c) => (c === '0' ? '1' : '0'))), undefined);
    assert.equal(await deleteUiSession(ctx.db, cookieValue), true);
    assert.equal(await findUiSession(ctx.db, cookieValue), undefined);
  });

  it('an expired session does not sign in and the janitor removes it', async () => {
    const expired = await createUiSession(ctx.db, 60_000);
    const live = await createUiSession(ctx.db, 60_000);
    await sql`UPDATE ui_sessions SET expires_at = now() - interval '1 second' WHERE id = ${expired.session.id}`.execute(ctx.db);
    assert.equal(await findUiSession(ctx.db, expired.cookieValue), undefined);
    assert.equal(await deleteExpiredUiSessions(ctx.db), 1);
    assert.ok(await findUiSession(ctx.db, live.cookieValue));
  });
});
