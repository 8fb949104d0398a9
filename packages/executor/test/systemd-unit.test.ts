/**
 * `executor install systemd`: executor.service passes `systemd-analyze verify`, drains on stop and
 * restarts only after a failure; executor.env holds the settings exactly, readable by root alone.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, readEnvironmentFile, removeTempDir, spawnExecutor, verifyUnit } from '@sandfleet/test-helpers';

/** A value with everything a quoting mistake would mangle: sh and systemd metacharacters, spaces, %. */
const PASSWORD = `pa$s"wo\\rd\`x %n 'quoted' $HOME \${PATH}`;

/** The unit's settings as `key → values` (a key may repeat). */
function settings(unit: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of unit.split('\n')) {
    const m = /^(\w+)=(.*)$/.exec(line);
    if (m) map.set(m[1]!, [...(map.get(m[1]!) ?? []), m[2]!]);
  }
  return map;
}

describe('executor install systemd', () => {
  let dir: string;
  let exec: string;
  const env = () => ({
    EXECUTOR_FRONTEND_URL: 'https://sandfleet.example.com',
    EXECUTOR_FRONTEND_PASSWORD: PASSWORD,
    EXECUTOR_QUEUE_NAMES: 'batches,codeintel',
    EXECUTOR_MAXIMUM_RUNTIME_PER_JOB: '2h',
    SRC_LOG_LEVEL: 'dbug',
    UNRELATED_SECRET: 'not-an-executor-setting',
  });
  const install = async (extraEnv: Record<string, string> = {}, unitDir = dir) => {
    const spawned = spawnExecutor(['install', 'systemd', '--unit-dir', unitDir, '--exec', exec], { ...env(), ...extraEnv });
    const code = await spawned.exit;
    return { code, output: spawned.output() };
  };

  before(() => {
    dir = makeTempDir('sandfleet-systemd-');
    // The binary ExecStart names must exist for systemd-analyze; a path with a space and a % tests the quoting.
    exec = path.join(dir, 'opt 100%', 'executor');
    fs.mkdirSync(path.dirname(exec));
    fs.copyFileSync('/bin/true', exec);
  });
  after(() => removeTempDir(dir));

  it('writes a unit that systemd-analyze verify accepts', async () => {
    const { code, output } = await install();
    assert.equal(code, 0, output);
    const verified = await verifyUnit(path.join(dir, 'executor.service'));
    assert.ok(verified.ok, verified.output);
  });

  it('runs the given binary with the environment file, drains on stop and restarts only on failure', () => {
    const unit = settings(fs.readFileSync(path.join(dir, 'executor.service'), 'utf8'));
    assert.deepEqual(unit.get('ExecStart'), [`"${exec.replace('%', '%%')}" run`]);
    assert.deepEqual(unit.get('EnvironmentFile'), [path.join(dir, 'executor.env')]);
    assert.deepEqual(unit.get('KillSignal'), ['SIGTERM']);
    // SIGTERM to the executor alone: job processes are the drain's to finish.
    assert.deepEqual(unit.get('KillMode'), ['mixed']);
    const stopSeconds = Number(/^(\d+)s$/.exec(unit.get('TimeoutStopSec')?.[0] ?? '')?.[1]);
    assert.ok(stopSeconds >= 2 * 3600, `TimeoutStopSec ${stopSeconds} s is shorter than the longest job (2h)`);
    assert.deepEqual(unit.get('Restart'), ['on-failure']);
    assert.deepEqual(unit.get('StandardOutput'), ['journal']);
    assert.deepEqual(unit.get('SyslogIdentifier'), ['executor']);
    assert.deepEqual(unit.get('WantedBy'), ['multi-user.target']);
  });

  it('keeps the executor settings, exactly, in a file only root can read', async () => {
    const file = path.join(dir, 'executor.env');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const values = await readEnvironmentFile(file);
    const { UNRELATED_SECRET: _, ...expected } = env();
    assert.deepEqual(values, expected);
    assert.ok(!fs.readFileSync(path.join(dir, 'executor.service'), 'utf8').includes('pa$s'), 'the password is in the unit, which anyone may read');
  });

  it('reports an unchanged installation and restores the mode of an opened-up environment file', async () => {
    const again = await install();
    assert.equal(again.code, 0, again.output);
    assert.equal(again.output.match(/already up to date/g)?.length, 2, again.output);
    fs.chmodSync(path.join(dir, 'executor.env'), 0o644);
    const fixed = await install();
    assert.match(fixed.output, /executor\.env \(mode 0600\)\n {2}updated/);
    assert.equal(fs.statSync(path.join(dir, 'executor.env')).mode & 0o777, 0o600);
  });

  it('writes nothing for an invalid configuration', async () => {
    const empty = path.join(dir, 'invalid');
    const { code, output } = await install({ EXECUTOR_FRONTEND_PASSWORD: '', EXECUTOR_MAXIMUM_RUNTIME_PER_JOB: '1500' }, empty);
    assert.equal(code, 1, output);
    assert.match(output, /EXECUTOR_FRONTEND_PASSWORD: no value supplied/);
    assert.match(output, /EXECUTOR_MAXIMUM_RUNTIME_PER_JOB/);
    assert.equal(fs.existsSync(empty), false);
  });

  it('refuses a value with a newline, which would smuggle in another setting', async () => {
    const other = path.join(dir, 'newline');
    const { code, output } = await install({ EXECUTOR_FRONTEND_PASSWORD: 'secret-with-a\nEXECUTOR_RUNTIME=shell' }, other);
    assert.equal(code, 1, output);
    assert.match(output, /control character/);
    assert.ok(!output.includes('secret-with-a'), output);
    assert.equal(fs.existsSync(other), false);
  });

  it('is checked by a verifier that does fail on a broken unit', async () => {
    const broken = path.join(dir, 'broken.service');
    fs.writeFileSync(broken, fs.readFileSync(path.join(dir, 'executor.service'), 'utf8').replace('KillMode=mixed', 'KillMode=gently'));
    assert.equal((await verifyUnit(broken)).ok, false);
  });
});
