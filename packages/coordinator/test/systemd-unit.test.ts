/**
 * `sandfleet install systemd`: sandfleet.service passes `systemd-analyze verify` and runs as a user
 * of its own with the site config as a credential; sandfleet.env keeps the settings, root-only.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { basicEnv, makeTempDir, readEnvironmentFile, removeTempDir, spawnProcess, verifyUnit } from '@sandfleet/test-helpers';
import { SANDFLEET_BIN } from '@sandfleet/test-helpers/coordinator';

describe('sandfleet install systemd', () => {
  let dir: string;
  let siteConfig: string;
  const env = () => ({
    DATABASE_URL: 'postgres://sandfleet:pa$$w%40rd@db.internal/sandfleet',
    SANDFLEET_ADMIN_TOKEN: 'admin-token-"quoted"-0123456789',
    SANDFLEET_SITE_CONFIG: siteConfig,
    SANDFLEET_HOST: '0.0.0.0',
    SANDFLEET_URL: 'http://127.0.0.1:3080',
  });
  const install = async (extraEnv: Record<string, string> = {}, unitDir = dir, args: string[] = []) => {
    const spawned = spawnProcess(process.execPath, [SANDFLEET_BIN, 'install', 'systemd', '--unit-dir', unitDir, ...args], basicEnv({ ...env(), ...extraEnv }));
    const code = await spawned.exit;
    return { code, output: spawned.output() };
  };
  const unitText = () => fs.readFileSync(path.join(dir, 'sandfleet.service'), 'utf8');

  before(() => {
    dir = makeTempDir('sandfleet-systemd-');
    siteConfig = path.join(dir, 'site-config.json');
    fs.writeFileSync(siteConfig, JSON.stringify({ 'executors.accessToken': 'a-long-random-shared-secret' }), { mode: 0o600 });
  });
  after(() => removeTempDir(dir));

  it('writes a unit that systemd-analyze verify accepts', async () => {
    const { code, output } = await install();
    assert.equal(code, 0, output);
    const verified = await verifyUnit(path.join(dir, 'sandfleet.service'));
    assert.ok(verified.ok, verified.output);
  });

  it('runs `serve` as a dynamic user, hands it the site config as a credential and restarts it on failure', () => {
    const unit = unitText();
    // SANDFLEET_HOST becomes a flag: `serve`'s own default for --host would win over the variable.
    assert.match(unit, new RegExp(`^ExecStart=${process.execPath} \\S+/bin/sandfleet\\.js serve --host 0\\.0\\.0\\.0 --port 3080 --data-dir /var/lib/sandfleet$`, 'm'));
    assert.match(unit, /^DynamicUser=yes$/m);
    assert.match(unit, /^StateDirectory=sandfleet$/m);
    assert.ok(unit.includes(`\nLoadCredential=site-config.json:${siteConfig}\n`), unit);
    assert.match(unit, /^Environment=SANDFLEET_SITE_CONFIG=%d\/site-config\.json$/m);
    assert.match(unit, /^Restart=on-failure$/m);
    assert.match(unit, /^RestartPreventExitStatus=2$/m);
    assert.match(unit, /^SyslogIdentifier=sandfleet$/m);
  });

  it('keeps the other settings, but the client URL, root-only', async () => {
    const file = path.join(dir, 'sandfleet.env');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const { SANDFLEET_SITE_CONFIG: _site, SANDFLEET_URL: _url, SANDFLEET_HOST: _host, ...expected } = env();
    // SANDFLEET_TEST_OWNER: the leak check's mark on the spawned process, a SANDFLEET_* variable too.
    const { SANDFLEET_TEST_OWNER: _owner, ...values } = await readEnvironmentFile(file);
    assert.deepEqual(values, expected);
    assert.ok(!unitText().includes('admin-token'), 'the admin token is in the unit, which anyone may read');
  });

  it('runs as an existing account when asked to', async () => {
    const other = path.join(dir, 'with-user');
    const { code, output } = await install({}, other, ['--user', 'daemon']);
    assert.equal(code, 0, output);
    const unit = fs.readFileSync(path.join(other, 'sandfleet.service'), 'utf8');
    assert.match(unit, /^User=daemon$/m);
    assert.doesNotMatch(unit, /DynamicUser/);
    assert.ok((await verifyUnit(path.join(other, 'sandfleet.service'))).ok);
  });

  it('writes nothing for an invalid configuration', async () => {
    const other = path.join(dir, 'invalid');
    const { code, output } = await install({ SANDFLEET_ADMIN_TOKEN: 'short' }, other);
    assert.equal(code, 2, output);
    assert.match(output, /SANDFLEET_ADMIN_TOKEN/);
    assert.ok(!output.includes('pa$$w'), output);
    assert.equal(fs.existsSync(other), false);
  });
});
