import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { isRunning, makeTempDir, removeTempDir, TEST_TAG } from '@sandfleet/test-helpers';
import { capture } from '../../src/process/run.js';
import { createJobNetwork, JOB_LINK, parseJobNetworkRecord, type JobNetwork } from '../../src/network/job-network.js';
import { slotAddresses } from '../../src/network/uplink.js';
import type { GuestImage } from '../../src/sandbox/vm/guest-image.js';
import { reapOrphanedVms } from '../../src/sandbox/vm/janitor.js';
import { qemuArgs, QemuVm } from '../../src/sandbox/vm/qemu.js';
import { attachVmNetwork, TAP_NAME, type VmNetwork } from '../../src/sandbox/vm/vm-network.js';
import { restoreGuest, saveGuestState } from '../../src/sandbox/vm/warm-start.js';
import { assertAllBlocked, BLOCKED, blockedProbeScript, OUTSIDE, startUpstream, tcp, udp, type TestUpstream } from '../sandbox/upstream.js';
import { cachedGuestImage } from './fixtures.js';

const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

async function sh(argv: string[]) {
  return capture(argv, { env: ENV });
}

async function netnsNames(): Promise<string[]> {
  return (await sh(['ip', 'netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

/** The other job: a VM with its own network, booted by a child process the janitor test kills. */
interface OtherJob {
  child: ChildProcess;
  qemuPid: number;
  dir: string;
  slotFile: string;
  key: string;
}

function bootOtherJob(runDir: string, image: GuestImage, upstream: TestUpstream, stateDir: string): Promise<OtherJob> {
  const runner = path.join(path.dirname(fileURLToPath(import.meta.url)), 'boot-and-wait.ts');
  const key = `${TEST_TAG}-vmnet-b`;
  const spec = { key, uplinkNamespace: upstream.namespace, dnsServers: [OUTSIDE.dns], stateDir };
  const child = spawn(process.execPath, ['--import', 'tsx', runner, runDir, JSON.stringify(image), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /^up (\d+) (\S+) (\S+)\n/.exec(out);
      if (m) resolve({ child, qemuPid: Number(m[1]), dir: m[2]!, slotFile: m[3]!, key });
    });
    child.once('exit', (code) => reject(new Error(`the other job's executor exited ${code}: ${out}`)));
  });
}

describe('microVM network: a tap behind the per-job router (upstream is a test namespace)', { timeout: 300_000 }, () => {
  let upstream: TestUpstream;
  let stateDir: string;
  let runDir: string;
  let image: GuestImage;
  let jobNetwork: JobNetwork | undefined;
  let vmNetwork: VmNetwork | undefined;
  let vm: QemuVm | undefined;
  let other: OtherJob | undefined;

  before(async () => {
    [upstream, image] = await Promise.all([startUpstream(), cachedGuestImage()]);
    stateDir = makeTempDir('sandfleet-vmnet-state-');
    runDir = makeTempDir('sandfleet-vmnet-run-');
    jobNetwork = await createJobNetwork(`${TEST_TAG}-vmnet-a`, 'public', upstream.uplink, stateDir);
    vmNetwork = await attachVmNetwork(jobNetwork);
    const booting = QemuVm.boot({ image, runDir, accelerator: 'tcg', memoryMiB: 192, cpus: 1, bootTimeoutMs: 180_000, network: vmNetwork, control: true });
    const otherBooting = bootOtherJob(runDir, image, upstream, stateDir);
    [vm, other] = await Promise.all([booting, otherBooting]);
    process.stderr.write(`# boot to agent ready with a NIC (TCG): ${vm.bootMs} ms\n`);
  });

  after(async () => {
    await vm?.teardown();
    await vmNetwork?.destroy();
    await jobNetwork?.destroy();
    if (other) {
      other.child.kill('SIGKILL');
      if (isRunning(other.qemuPid)) process.kill(other.qemuPid, 'SIGKILL');
      await reapOrphanedVms(runDir).catch(() => []);
    }
    await upstream?.stop();
    if (runDir) removeTempDir(runDir);
    if (stateDir) removeTempDir(stateDir);
  });

  it('the guest has the job address and reaches the public stand-in over TCP, UDP and ICMP; names resolve through the job resolver', async () => {
    const r = await vm!.run(`ip -4 addr show eth0; ${tcp(OUTSIDE.public)}; ${udp(OUTSIDE.public)}; cat /etc/resolv.conf; nslookup example.com; ping -c 1 -W 3 ${OUTSIDE.public} >/dev/null && echo ping-ok`, 60);
    assert.match(r.stdout, /inet 100\.96\.0\.2\/30/, r.stderr);
    assert.match(r.stdout, /hello from 203\.0\.113\.10/, r.stderr);
    assert.match(r.stdout, /Server:\s+203\.0\.113\.10[\s\S]*Address: 203\.0\.113\.10/);
    assert.match(r.stdout, /^nameserver 10\.53\.0\.53$/m);
    assert.match(r.stdout, /Server:\s+10\.53\.0\.53[\s\S]*Address: 203\.0\.113\.10/);
    assert.match(r.stdout, /ping-ok/);
  });

  it('metadata, private ranges, the host, its router and the other job are rejected over TCP, UDP and ICMP', async () => {
    const otherSlot = slotAddresses(Number(path.basename(other!.slotFile)));
    const targets = [...BLOCKED, JOB_LINK.gateway, otherSlot.router, otherSlot.outside];
    const r = await vm!.run(blockedProbeScript(targets, { icmp: true }), 90);
    assertAllBlocked(r.stdout, targets, { icmp: true });
  });

  it('the resolver answers DNS only', async () => {
    const r = await vm!.run(`${tcp(OUTSIDE.dns)} 2>&1; echo rc=$?`, 30);
    assert.doesNotMatch(r.stdout, /hello from/);
    assert.match(r.stdout, /(No route to host|Host is unreachable|can't connect)[\s\S]*rc=1/, r.stdout);
  });

  it('a guest that sends from addresses it picked itself is dropped at the router', async () => {
    // The guest's root sends as the resolver and as a private address (routes with a chosen
    // source). Rejecting would send the ICMP error, quoting the packet, out of the uplink to the
    // claimed address; the router drops such packets before any other rule.
    const gw = JOB_LINK.gateway;
    const spoofedDrops = async () => {
      const rules = await sh(['ip', 'netns', 'exec', jobNetwork!.record.namespaces[1]!, 'nft', 'list', 'chain', 'inet', 'sandfleet', 'forward']);
      return Number(/counter packets (\d+) bytes \d+ drop comment "spoofed"/.exec(rules.stdout)?.[1]);
    };
    const dropsBefore = await spoofedDrops();
    const r = await vm!.run([
      `ip addr add ${OUTSIDE.dns}/32 dev eth0 && ip addr add 10.9.9.8/32 dev eth0`,
      `ip route add ${OUTSIDE.public}/32 via ${gw} src 10.9.9.8 && ip route add ${OUTSIDE.metadata}/32 via ${gw} src ${OUTSIDE.dns}`,
      `ip route get ${OUTSIDE.public}; ip route get ${OUTSIDE.metadata}`,
      `${tcp(OUTSIDE.public)} 2>&1; echo rc=$?; ${tcp(OUTSIDE.metadata)} 2>&1; echo rc=$?`,
      `ip route del ${OUTSIDE.public}/32; ip route del ${OUTSIDE.metadata}/32; ip addr del ${OUTSIDE.dns}/32 dev eth0; ip addr del 10.9.9.8/32 dev eth0`,
      tcp(OUTSIDE.public),
    ].join('\n'), 60);
    assert.match(r.stdout, /203\.0\.113\.10 via 100\.96\.0\.1 dev eth0\s+src 10\.9\.9\.8/, r.stdout + r.stderr);
    assert.match(r.stdout, /169\.254\.169\.254 via 100\.96\.0\.1 dev eth0\s+src 10\.53\.0\.53/, r.stdout);
    // Even the public address is unreachable from a forged source; from its own, the guest reaches it again.
    assert.equal(r.stdout.match(/timed out\s+rc=1/g)?.length, 2, r.stdout);
    assert.equal(r.stdout.match(/hello from/g)?.length, 1, r.stdout);
    assert.ok(await spoofedDrops() >= dropsBefore + 2, `the router's spoofed counter went from ${dropsBefore} to ${await spoofedDrops()}`);
  });

  it('QEMU runs in the job namespace, which holds only lo, eth0, the bridge and the tap, and no address but loopback', async () => {
    const qemuNs = fs.statSync(`/proc/${vm!.pid}/ns/net`).ino;
    assert.equal(qemuNs, fs.statSync(jobNetwork!.netnsPath).ino);
    const links = (await sh(['ip', '-n', jobNetwork!.name, '-o', 'link'])).stdout.split('\n').filter(Boolean).map((l) => l.split(':')[1]!.trim().replace(/@.*/, ''));
    assert.deepEqual(links.sort(), ['br0', 'eth0', 'lo', TAP_NAME].sort());
    const addrs = (await sh(['ip', '-n', jobNetwork!.name, '-o', 'addr'])).stdout.split('\n').filter(Boolean);
    assert.deepEqual(addrs.map((l) => l.split(/\s+/)[1]), ['lo'], addrs.join('\n'));
  });

  it('the janitor removes a SIGKILLed owner\'s VM, its tap, namespaces, uplink veth and slot', async () => {
    const o = other!;
    o.child.kill('SIGKILL');
    await new Promise((r) => o.child.once('exit', r));
    const uplinkVeth = `sfu${path.basename(o.slotFile)}`;
    const before = await netnsNames();
    assert.ok(before.includes(`sfj-${o.key}`) && before.includes(`sfr-${o.key}`), before.join(' '));
    assert.ok(fs.existsSync(o.slotFile));
    assert.equal((await sh(['ip', '-n', `sfj-${o.key}`, 'link', 'show', TAP_NAME])).exitCode, 0);
    assert.equal((await sh(['ip', '-n', upstream.namespace, 'link', 'show', uplinkVeth])).exitCode, 0);

    assert.deepEqual(await reapOrphanedVms(runDir), [o.dir]);
    assert.equal(isRunning(o.qemuPid), false);
    assert.equal(fs.existsSync(o.dir), false);
    const left = await netnsNames();
    assert.ok(!left.includes(`sfj-${o.key}`) && !left.includes(`sfr-${o.key}`), left.join(' '));
    assert.equal(fs.existsSync(o.slotFile), false);
    assert.notEqual((await sh(['ip', '-n', upstream.namespace, 'link', 'show', uplinkVeth])).exitCode, 0);
    other = undefined;
    // This process's VM keeps its network.
    assert.match((await vm!.run(tcp(OUTSIDE.public), 30)).stdout, /hello from 203\.0\.113\.10/);
  });

  it('a guest saved in one job\'s network and restored into another job\'s is wired and filtered there', async () => {
    // Saving pauses this VM for good; the teardown test below only tears it down.
    const stateFile = path.join(stateDir, 'idle.state');
    await saveGuestState(vm!, stateFile);
    const next = await createJobNetwork(`${TEST_TAG}-vmnet-c`, 'public', upstream.uplink, stateDir);
    let nextVm: VmNetwork | undefined;
    let restored: QemuVm | undefined;
    try {
      nextVm = await attachVmNetwork(next);
      restored = await restoreGuest({ ...vm!.options, network: nextVm }, stateFile);
      assert.equal(fs.statSync(`/proc/${restored.pid}/ns/net`).ino, fs.statSync(next.netnsPath).ino);
      const r = await restored.run(`${tcp(OUTSIDE.public)}; ${tcp(OUTSIDE.metadata)} 2>&1; echo rc=$?`, 30);
      assert.match(r.stdout, /hello from 203\.0\.113\.10/, r.stdout + r.stderr);
      assert.match(r.stdout, /(No route to host|Host is unreachable)\s+rc=1/, r.stdout);
    } finally {
      await restored?.teardown();
      await nextVm?.destroy();
      await next.destroy();
    }
  });

  it('teardown removes the tap, the namespaces, the uplink veth and the slot', async () => {
    const net = jobNetwork!;
    const slotFile = net.record.slotFile!;
    const uplinkVeth = `sfu${path.basename(slotFile)}`;
    await vm!.teardown();
    vm = undefined;
    await vmNetwork!.destroy();
    vmNetwork = undefined;
    assert.notEqual((await sh(['ip', '-n', net.name, 'link', 'show', TAP_NAME])).exitCode, 0);
    const links = (await sh(['ip', '-n', net.name, '-o', 'link'])).stdout;
    assert.doesNotMatch(links, /br0/);
    await net.destroy();
    jobNetwork = undefined;
    const left = await netnsNames();
    assert.ok(!left.some((n) => n.endsWith(`-${TEST_TAG}-vmnet-a`)), left.join(' '));
    assert.equal(fs.existsSync(slotFile), false);
    assert.notEqual((await sh(['ip', '-n', upstream.namespace, 'link', 'show', uplinkVeth])).exitCode, 0);
  });
});

describe('microVM network without a boot', () => {
  it('policy none keeps -nic none and still runs QEMU in the job namespace (which has only lo)', async () => {
    const stateDir = makeTempDir('sandfleet-vmnet-none-');
    const none = await createJobNetwork(`${TEST_TAG}-vmnet-none`, 'none', undefined, stateDir);
    try {
      const n = await attachVmNetwork(none);
      assert.deepEqual(n.qemuArgs, ['-nic', 'none']);
      assert.deepEqual(n.kernelArgs, []);
      assert.deepEqual(n.spawnPrefix, ['nsenter', `--net=${none.netnsPath}`, '--']);
      const image = { dir: stateDir, kernelPath: '/k', initrdPath: '/i', kernelRelease: 'r', inputDigest: 'a', outputDigest: 'b' };
      const args = qemuArgs({ image, runDir: stateDir, accelerator: 'tcg', memoryMiB: 128, cpus: 1, network: n }, stateDir);
      assert.equal(args[args.indexOf('-nic') + 1], 'none');
      assert.ok(!args.includes('-netdev'));
    } finally {
      await none.destroy();
      removeTempDir(stateDir);
    }
  });

  it('the janitor refuses network records that name anything but job namespaces and slots', () => {
    assert.deepEqual(parseJobNetworkRecord('{"namespaces":["sfj-a-1","sfr-a-1"],"slotFile":"/var/lib/sandfleet/network/slots/12"}'), { namespaces: ['sfj-a-1', 'sfr-a-1'], slotFile: '/var/lib/sandfleet/network/slots/12' });
    for (const bad of ['', 'null', '{"namespaces":["default"]}', '{"namespaces":["sfj-../x"]}', '{"namespaces":["sfj-a"],"slotFile":"/etc/passwd"}', '{"namespaces":["sfj-a"],"slotFile":"network/slots/1"}', '{"namespaces":"sfj-a"}']) {
      assert.throws(() => parseJobNetworkRecord(bad), /job network record/, bad);
    }
  });
});
