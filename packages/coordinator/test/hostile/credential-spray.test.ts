import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testBackends } from '@sandfleet/test-helpers/db';
import { ACCESS_TOKEN, ADMIN_TOKEN, createTestApp, type TestApp } from '@sandfleet/test-helpers/coordinator';
import { AcceptanceCache } from '../../src/http/acceptance-cache.js';

const HOUR = 3_600_000;
const SPRAY = 300;

/** Distinct wrong credentials of every shape a client can put in a header: short, long, odd bytes. */
function wrongCredentials(n: number): string[] {
  const odd = ['x', 'é'.repeat(100), 'A'.repeat(64 * 1024), `${ACCESS_TOKEN}x`, ACCESS_TOKEN.slice(0, -1), ` ${ADMIN_TOKEN}`];
  return [...odd, ...Array.from({ length: n - odd.length }, (_, i) => `guess-${i}-${'0123456789abcdef'.repeat(2)}`)];
}

for (const backend of testBackends()) {
  describe(`a client spraying wrong credentials (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend, { executorSecretCacheMs: HOUR, adminTokenCacheMs: HOUR });
    });
    after(async () => t?.close());

    it('gets 401 for every wrong executor secret and admin token, and the right ones still work', async () => {
      const guesses = wrongCredentials(SPRAY);
      const executorAnswers = await Promise.all(guesses.map((g) => t.request('GET', '/.executors/test/auth', { headers: { Authorization: `token-executor ${g}` } })));
      const adminAnswers = await Promise.all(guesses.map((g) => t.request('GET', '/api/queues', { headers: { Authorization: `Bearer ${g}` } })));
      assert.deepEqual(new Set(executorAnswers.map((r) => r.status)), new Set([401]));
      assert.deepEqual(new Set(adminAnswers.map((r) => r.status)), new Set([401]));
      assert.equal((await t.request('GET', '/.executors/test/auth', { headers: { Authorization: `token-executor ${ACCESS_TOKEN}` } })).status, 200);
      assert.equal((await t.admin('GET', '/api/queues')).status, 200);
      assert.equal((await t.request('GET', '/healthz')).status, 200);
    });
  });
}

describe('the acceptance cache under a credential spray', () => {
  it('holds nothing for refused credentials and checks each again, so memory stays bounded', async () => {
    let checks = 0;
    const cache = new AcceptanceCache(async (presented) => {
      checks++;
      return { accepted: presented === 'the-one-right-credential' };
    }, HOUR);
    for (const guess of wrongCredentials(2_000)) assert.equal(await cache.isAccepted(guess), false);
    assert.equal(cache.size, 0, 'a refusal is never stored');
    assert.equal(await cache.isAccepted('guess-10-0123456789abcdef0123456789abcdef'), false);
    assert.equal(checks, 2_001, 'a refused credential is checked again (a token created since is accepted at once)');
    assert.equal(await cache.isAccepted('the-one-right-credential'), true);
    assert.equal(await cache.isAccepted('the-one-right-credential'), true);
    assert.equal(checks, 2_002, 'an acceptance is remembered');
    assert.equal(cache.size, 1);
  });
});
