import assert from 'node:assert/strict';
import { it } from 'node:test';
import { sql } from 'kysely';
import {
  configSecretExpiry,
  deleteExpiredExecutorSecrets,
  isAcceptedExecutorSecret,
  listExecutorSecrets,
  rotateExecutorSecret,
  secretFingerprint,
} from '../src/index.js';
import { describeEachBackend } from '@sandfleet/test-helpers/db';

const CONFIG = 'config-secret-0123456789abcdef';
const HOUR = 3_600_000;

/** Moves every stored secret's expiry `ms` into the past, as if the grace period had run out. */
async function expireAll(db: Parameters<typeof listExecutorSecrets>[0]): Promise<void> {
  await sql`UPDATE executor_secrets SET expires_at = now() - interval '1 second' WHERE expires_at IS NOT NULL`.execute(db);
}

describeEachBackend('executor secrets', (ctx) => {
  it('accepts only the config secret before any rotation', async () => {
    assert.equal(await isAcceptedExecutorSecret(ctx.db, CONFIG, CONFIG), true);
    assert.equal(await isAcceptedExecutorSecret(ctx.db, CONFIG + 'x', CONFIG), false);
    assert.equal(await isAcceptedExecutorSecret(ctx.db, CONFIG, undefined), false);
  });

  it('rotates: the new secret is stored hashed; the config secret is accepted during the grace period and refused after, for good', async () => {
    const { secret, record, previousAcceptedUntil } = await rotateExecutorSecret(ctx.db, { configSecret: CONFIG, graceMs: HOUR });
    assert.match(secret, /^sfe_[0-9a-f]{64}$/);
    assert.equal(record.fingerprint, secretFingerprint(secret));
    assert.equal(record.expiresAt, null);
    const stored = await sql<{ hex: string }>`SELECT encode(value_sha256, 'hex') AS hex FROM executor_secrets`.execute(ctx.db);
    assert.ok(stored.rows.every((r) => !r.hex.includes(secret.slice(4))), 'no plaintext stored');
    assert.ok(Math.abs(previousAcceptedUntil.getTime() - Date.now() - HOUR) < 5 * 60_000);
    assert.equal((await configSecretExpiry(ctx.db, CONFIG))?.getTime(), previousAcceptedUntil.getTime());

    assert.equal(await isAcceptedExecutorSecret(ctx.db, secret, CONFIG), true);
    assert.equal(await isAcceptedExecutorSecret(ctx.db, CONFIG, CONFIG), true, 'within the grace period');
    await expireAll(ctx.db);
    assert.equal(await isAcceptedExecutorSecret(ctx.db, CONFIG, CONFIG), false, 'grace period over');
    assert.equal(await isAcceptedExecutorSecret(ctx.db, secret, CONFIG), true, 'the new one is current');
    // The retired config secret stays retired, even once old rotated rows are pruned.
    assert.equal(await deleteExpiredExecutorSecrets(ctx.db, 0), 0);
    assert.equal(await isAcceptedExecutorSecret(ctx.db, CONFIG, CONFIG), false);
    // A different config secret is an operator's new choice.
    assert.equal(await isAcceptedExecutorSecret(ctx.db, 'another-config-secret-0123', 'another-config-secret-0123'), true);
  });

  it('a second rotation gives the first rotated secret the grace period and never extends an earlier one', async () => {
    const first = await rotateExecutorSecret(ctx.db, { configSecret: CONFIG, graceMs: 60_000 });
    const second = await rotateExecutorSecret(ctx.db, { configSecret: CONFIG, graceMs: HOUR });
    const byFingerprint = new Map((await listExecutorSecrets(ctx.db)).map((r) => [r.fingerprint, r]));
    assert.equal(byFingerprint.get(second.record.fingerprint)?.expiresAt, null);
    assert.ok(byFingerprint.get(first.record.fingerprint)?.expiresAt, 'first is retiring');
    const configExpiry = (await configSecretExpiry(ctx.db, CONFIG))!.getTime();
    assert.ok(configExpiry <= first.previousAcceptedUntil.getTime(), 'the config secret kept its shorter grace');
    for (const s of [first.secret, second.secret, CONFIG]) assert.equal(await isAcceptedExecutorSecret(ctx.db, s, CONFIG), true);
    await expireAll(ctx.db);
    assert.equal(await isAcceptedExecutorSecret(ctx.db, first.secret, CONFIG), false);
    assert.equal(await isAcceptedExecutorSecret(ctx.db, second.secret, CONFIG), true);
    assert.equal(await deleteExpiredExecutorSecrets(ctx.db, 0), 1, 'the expired rotated row is pruned');
    assert.equal(await isAcceptedExecutorSecret(ctx.db, first.secret, CONFIG), false);
  });

  it('grace 0 retires the previous secret at once', async () => {
    const { secret } = await rotateExecutorSecret(ctx.db, { configSecret: CONFIG, graceMs: 0 });
    assert.equal(await isAcceptedExecutorSecret(ctx.db, CONFIG, CONFIG), false);
    assert.equal(await isAcceptedExecutorSecret(ctx.db, secret, CONFIG), true);
  });
});
