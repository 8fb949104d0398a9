import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsx } from 'hono/jsx';
import type { CoordinatorConfig } from '../../src/config.js';
import { ExecutorSetup } from '../../src/ui/executors.js';

const SECRET = 'config-secret-0123456789abcdef';
const config = { executorAccessToken: SECRET } as CoordinatorConfig;
const render = async (configSecretRetiresAt?: Date) =>
  (await jsx(ExecutorSetup, { config, url: 'http://coordinator.test', configSecretRetiresAt }).toString()) as string;

describe('executor set-up instructions', () => {
  it('reveal the site config secret while it is current', async () => {
    const html = await render();
    assert.match(html, new RegExp(`<code id="executor-password">${SECRET}</code>`));
    assert.doesNotMatch(html, /rotated/);
  });

  it('say until when a rotated-out config secret is still accepted', async () => {
    const html = await render(new Date(Date.now() + 3_600_000));
    assert.ok(html.includes(SECRET), 'still accepted: still revealed');
    assert.match(html, /It was rotated and is accepted only until \d{4}-\d\d-\d\dT/);
  });

  it('never show a config secret that a rotation retired, and point to the rotated one', async () => {
    const html = await render(new Date(Date.now() - 1000));
    assert.ok(!html.includes(SECRET), 'a refused secret is not offered');
    assert.match(html, /id="executor-password-rotated"/);
    assert.match(html, /href="\/configuration"/);
  });
});
