import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT } from './harness.js';

const SANDFLEET = path.join(REPO_ROOT, 'packages/coordinator/bin/sandfleet.js');

describe('sandfleet command line', () => {
  it('refuses to start with an executors.accessToken shorter than 20 characters', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandfleet-cli-'));
    const site = path.join(dir, 'site.json');
    fs.writeFileSync(site, JSON.stringify({ 'executors.accessToken': 'too-short' }));
    const result = spawnSync(process.execPath, [SANDFLEET, 'serve', '--port', '0', '--data-dir', dir, '--site-config', site], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH!, HOME: dir },
    });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /executors.accessToken must be at least 20 characters long \(it has 9\)/);
  });

  it('`sandfleet up` starts a coordinator and an executor and runs the demo job to completion', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandfleet-up-'));
    const port = String(20_000 + Math.floor(Math.random() * 20_000));
    const up = spawn(process.execPath, [SANDFLEET, 'up', '--port', port, '--data-dir', path.join(dir, 'data')], {
      cwd: dir,
      env: { PATH: process.env.PATH!, HOME: dir, ...(process.env.EXECUTOR_RUNTIME ? { EXECUTOR_RUNTIME: process.env.EXECUTOR_RUNTIME } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    up.stdout.on('data', (c) => (out += c));
    up.stderr.on('data', (c) => (out += c));
    try {
      const command = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no demo command printed in 90 s:\n${out}`)), 90_000);
        const check = () => {
          const m = /(SANDFLEET_URL=\S+ SANDFLEET_ADMIN_TOKEN=\S+) npx sandfleet (jobs submit \S+ --follow)/.exec(out.replace(/\x1b\[[0-9;]*m/g, ''));
          if (m) {
            clearTimeout(timer);
            resolve(m[0]);
          }
        };
        up.stderr.on('data', check);
        up.once('exit', (code) => reject(new Error(`sandfleet up exited with ${code}:\n${out}`)));
      });
      const [, url, token, file] = /SANDFLEET_URL=(\S+) SANDFLEET_ADMIN_TOKEN=(\S+) npx sandfleet jobs submit (\S+)/.exec(command)!;
      // Run the printed command (with the CLI from this checkout instead of npx).
      const submit = spawnSync(process.execPath, [SANDFLEET, 'jobs', 'submit', file!, '--follow'], {
        cwd: dir,
        encoding: 'utf8',
        timeout: 120_000,
        env: { PATH: process.env.PATH!, HOME: dir, SANDFLEET_URL: url!, SANDFLEET_ADMIN_TOKEN: token! },
      });
      assert.equal(submit.status, 0, `${submit.stdout}\n${submit.stderr}\n--- up:\n${out}`);
      assert.match(submit.stdout, /state: completed/);
      // The local executor ran the steps in a real sandbox, in the image the coordinator serves.
      assert.match(submit.stdout, /── setup\.(gvisor|oci|bwrap|docker)\.start/);
      assert.match(submit.stdout, /pulled docker\.io\/sandfleet\/demo:latest from mirror/);
      assert.match(submit.stdout, /counting 3/);
      assert.match(submit.stdout, /the secret is \[REDACTED\]/);
      assert.doesNotMatch(submit.stdout, /swordfish/);
    } finally {
      const exited = new Promise((r) => up.once('exit', r));
      up.kill('SIGTERM');
      const timer = setTimeout(() => up.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
