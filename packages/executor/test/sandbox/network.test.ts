import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { capture } from '../../src/process/run.js';
import { createJobNetwork, type JobNetwork } from '../../src/network/job-network.js';
import { HostUplink } from '../../src/network/uplink.js';
import { assertAllBlocked, BLOCKED, blockedProbeScript, OUTSIDE, startUpstream, tcp, udp, type TestUpstream } from './upstream.js';

const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

async function inJob(net: JobNetwork, script: string) {
  return capture(['ip', 'netns', 'exec', net.name, 'busybox', 'sh', '-c', script], { env: ENV, signal: AbortSignal.timeout(20_000) });
}

describe('job network namespaces (upstream is a test namespace)', () => {
  let upstream: TestUpstream;
  let stateDir: string;
  let a: JobNetwork;
  let b: JobNetwork;

  before(async () => {
    upstream = await startUpstream();
    stateDir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-net-'));
    [a, b] = await Promise.all([
      createJobNetwork('ntest-a', 'public', upstream.uplink, stateDir),
      createJobNetwork('ntest-b', 'public', upstream.uplink, stateDir),
    ]);
  });
  after(async () => {
    await a?.destroy();
    await b?.destroy();
    await upstream?.stop();
    await fs.rm(stateDir, { recursive: true, force: true });
  });

  it('reaches the public address over TCP and UDP, and resolves names', async () => {
    const r = await inJob(a, `${tcp(OUTSIDE.public)}; ${udp(OUTSIDE.public)}; ${udp(OUTSIDE.dns)}`);
    assert.match(r.stdout, /hello from 203\.0\.113\.10/);
    assert.match(r.stdout, /Server:\s+203\.0\.113\.10[\s\S]*Address: 203\.0\.113\.10/);
    assert.match(r.stdout, /Server:\s+10\.53\.0\.53[\s\S]*Address: 203\.0\.113\.10/);
    assert.equal(a.resolvConf, `nameserver ${OUTSIDE.dns}\n`);
  });

  it('rejects metadata, private ranges and the host over TCP, UDP and ICMP', async () => {
    const r = await inJob(a, blockedProbeScript(BLOCKED, { icmp: true }));
    assertAllBlocked(r.stdout, BLOCKED, { icmp: true });
  });

  it('keeps rejecting a job\'s traffic while another job\'s network starts and ends', async () => {
    const marker = path.join(stateDir, 'stop-probing');
    const loop = inJob(a, `i=0; while [ ! -e ${marker} ] && [ $i -lt 1000 ]; do ${tcp(OUTSIDE.metadata)} 2>&1; echo rc=$?; i=$((i+1)); done`);
    const c = await createJobNetwork('ntest-c', 'public', upstream.uplink, stateDir);
    await c.destroy();
    await fs.writeFile(marker, '');
    const r = await loop;
    const attempts = r.stdout.match(/rc=\d+/g) ?? [];
    assert.ok(attempts.length > 0, r.stdout);
    assert.doesNotMatch(r.stdout, /hello from|rc=0/);
    assert.equal(r.stdout.match(/No route to host|Host is unreachable/g)?.length, attempts.length, r.stdout);
    const after = await inJob(a, `${tcp(OUTSIDE.metadata)} 2>&1; ${tcp(OUTSIDE.public)}`);
    assert.match(after.stdout, /No route to host|Host is unreachable/);
    assert.match(after.stdout, /hello from 203\.0\.113\.10/);
  });

  it('does not let DNS servers be used for anything but DNS', async () => {
    const r = await inJob(a, `${tcp(OUTSIDE.dns)} 2>&1`);
    assert.doesNotMatch(r.stdout, /hello from/);
  });

  it('cannot reach its router, the transit range or another job', async () => {
    const r = await inJob(a, `${tcp('100.96.0.1')} 2>&1; ${tcp('100.80.0.1')} 2>&1; busybox ip addr`);
    assert.doesNotMatch(r.stdout, /hello from/);
    assert.match(r.stdout, /100\.96\.0\.2/);
    // Both jobs have the same inner address; each lives in its own namespace, so the other is unnameable.
    const same = await inJob(b, 'busybox ip -4 addr show eth0');
    assert.match(same.stdout, /100\.96\.0\.2/);
  });

  it('gives a `none` job only loopback', async () => {
    const none = await createJobNetwork('ntest-none', 'none', undefined, stateDir);
    try {
      const r = await inJob(none, `busybox ip -o link; ${tcp(OUTSIDE.public)} 2>&1`);
      assert.deepEqual(r.stdout.split('\n').filter((l) => /^\d+:/.test(l)).map((l) => l.split(':')[1]?.trim()), ['lo']);
      assert.match(r.stdout, /Network is unreachable|can't connect/);
    } finally {
      await none.destroy();
    }
    const list = await capture(['ip', 'netns', 'list'], { env: ENV });
    assert.doesNotMatch(list.stdout, /sfj-ntest-none/);
  });

  it('refuses the host uplink under the test runner', async () => {
    await assert.rejects(createJobNetwork('ntest-host', 'public', new HostUplink(['192.0.2.53']), stateDir), /refusing to wire a job network to the host/);
    const list = await capture(['ip', 'netns', 'list'], { env: ENV });
    assert.doesNotMatch(list.stdout, /ntest-host/);
  });
});
