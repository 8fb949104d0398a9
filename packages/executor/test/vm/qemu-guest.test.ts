import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { isAlive, makeTempDir, removeTempDir } from '@sandfleet/test-helpers';
import { chooseAccelerator, type AcceleratorChoice } from '../../src/sandbox/vm/accelerator.js';
import { buildGuestImage, type GuestImage } from '../../src/sandbox/vm/guest-image.js';
import { reapOrphanedVms, VM_DIR_PREFIX } from '../../src/sandbox/vm/janitor.js';
import { AGENT_OVER_VSOCK_ARG, VSOCK_LOOPBACK_BRIDGE_ARG } from '../../src/sandbox/vm/guest-scripts.js';
import { MAX_CONSOLE_LOG_BYTES, QemuVm } from '../../src/sandbox/vm/qemu.js';
import { cachedGuestImage, guestPackages } from './fixtures.js';


describe('QEMU microvm guest', { timeout: 240_000 }, () => {
  let image: GuestImage;
  let runDir: string;
  let choice: AcceleratorChoice;
  let vm: QemuVm | undefined;

  before(async () => {
    image = await cachedGuestImage();
    runDir = makeTempDir('sandfleet-vm-run-');
    choice = await chooseAccelerator({ image, runDir });
    vm = await QemuVm.boot({ image, runDir, accelerator: choice.accelerator, memoryMiB: 256, cpus: 1, bootTimeoutMs: 120_000 });
    process.stderr.write(`# ${choice.accelerator} (${choice.reason}); boot to agent ready: ${vm.bootMs} ms\n`);
  });

  after(async () => {
    await vm?.teardown();
    removeTempDir(runDir);
  });

  it('the same packages build to the same digest', async () => {
    const again = makeTempDir('sandfleet-vm-rebuild-');
    try {
      const rebuilt = await buildGuestImage(await guestPackages(), again);
      assert.equal(rebuilt.cached, false);
      assert.equal(rebuilt.inputDigest, image.inputDigest);
      assert.equal(rebuilt.outputDigest, image.outputDigest);
      assert.ok(fs.readFileSync(rebuilt.initrdPath).equals(fs.readFileSync(image.initrdPath)), 'the initramfs differs byte for byte');
      assert.equal((await buildGuestImage(await guestPackages(), again)).cached, true);
    } finally {
      removeTempDir(again);
    }
  });

  it('runs a command and reports its stdout, stderr and exit code', async () => {
    const started = Date.now();
    const r = await vm!.run('echo hello; echo err >&2; exit 3', 30);
    process.stderr.write(`# round trip of a trivial command: ${Date.now() - started} ms\n`);
    assert.deepEqual(r, { stdout: 'hello\n', stderr: 'err\n', exitCode: 3, timedOut: false, oomKilled: false, truncated: false });
  });

  it('streams output while the command runs and keeps bytes exact', async () => {
    const chunks: { stream: string; text: string }[] = [];
    let firstBeforeSecond = false;
    const r = await vm!.run('printf "first"; sleep 2; printf "second\\n\\001\\377" >&2', 30, (stream, chunk) => {
      chunks.push({ stream, text: chunk.toString('latin1') });
    }).then((result) => {
      firstBeforeSecond = chunks[0]?.text === 'first';
      return result;
    });
    assert.ok(firstBeforeSecond, JSON.stringify(chunks));
    assert.deepEqual(chunks.map((c) => c.stream), ['stdout', 'stderr']);
    assert.equal(chunks[1]!.text, 'second\n\x01\xff');
    assert.equal(r.exitCode, 0);
  });

  it('a step does not inherit the agent\'s channel', async () => {
    const r = await vm!.run('[ -e /proc/$$/fd/3 ] && echo "fd 3: $(readlink /proc/$$/fd/3)"; ls /proc/$$/fd | tr "\\n" " "', 30);
    assert.equal(r.stdout.trim(), '0 1 10 2');
  });

  it('serves over vsock when the command line says so (Firecracker\'s channel), here through the loopback bridge', async () => {
    const other = await QemuVm.boot({ image, runDir, accelerator: choice.accelerator, memoryMiB: 256, cpus: 1, bootTimeoutMs: 120_000, kernelArgs: [AGENT_OVER_VSOCK_ARG, VSOCK_LOOPBACK_BRIDGE_ARG] });
    try {
      // The agent's channel is a socket socat accepted on vsock, and nothing else socat had is left
      // open (10 is the shell reading the agent's own script).
      const r = await other.run('a=$(ps -o pid,args | awk "/sandfleet-agent --stdio/ { print \\$1; exit }"); readlink /proc/$a/fd/3; echo $(ls /proc/$a/fd | sort -n); grep -c "^vsock_loopback " /proc/modules', 30);
      const [channel, fds, loopback] = r.stdout.trim().split('\n');
      assert.match(channel!, /^socket:\[\d+\]$/);
      assert.equal(fds, '0 1 2 3 10');
      assert.equal(loopback, '1');
      assert.deepEqual(await other.run('echo out; echo err >&2; exit 4', 30), { stdout: 'out\n', stderr: 'err\n', exitCode: 4, timedOut: false, oomKilled: false, truncated: false });
    } finally {
      await other.teardown();
    }
    // Without the words, the agent is on its virtio port and the loopback module is not loaded.
    const r = await vm!.run('grep -c "^vsock_loopback " /proc/modules; lsmod | grep -c "^vmw_vsock_virtio_transport "', 30);
    assert.deepEqual(r.stdout.trim().split('\n'), ['0', '1']);
  });

  it('kills a command at its wall time, children included, and keeps serving', async () => {
    const started = Date.now();
    const r = await vm!.run('echo start; (sleep 60; echo child-survived) & sleep 60; echo never', 2);
    assert.equal(r.timedOut, true);
    assert.equal(r.exitCode, 137);
    assert.equal(r.stdout, 'start\n');
    assert.ok(Date.now() - started < 45_000, 'the step was not cut short');
    // ps must see the agent itself, or a count of 0 would prove nothing.
    const next = await vm!.run('ps -o args > /tmp/ps; grep -q "[s]andfleet-agent" /tmp/ps && echo ps-works; grep -c "[s]leep 60" /tmp/ps', 30);
    assert.equal(next.stdout, 'ps-works\n0\n', next.stderr);
  });

  it('keeps the guest console in a log file that a flooding guest cannot grow past its cap', async () => {
    const log = path.join(vm!.dir, 'console.log');
    assert.match(fs.readFileSync(log, 'latin1'), /\S/, 'the boot console is logged');
    const r = await vm!.run(`head -c ${MAX_CONSOLE_LOG_BYTES + 300_000} /dev/zero | tr "\\0" x > /dev/ttyS0; echo flooded`, 120);
    assert.equal(r.stdout, 'flooded\n', r.stderr);
    // The serial port is slow under TCG: wait for QEMU to pass the rest on.
    const deadline = Date.now() + 60_000;
    while (!fs.readFileSync(log, 'latin1').includes('[console log truncated') && Date.now() < deadline) await new Promise((res) => setTimeout(res, 100));
    const size = fs.statSync(log).size;
    assert.ok(size > MAX_CONSOLE_LOG_BYTES && size < MAX_CONSOLE_LOG_BYTES + 200, `console.log is ${size} bytes`);
  });

  it('QEMU runs under its own seccomp filter', () => {
    assert.match(fs.readFileSync(`/proc/${vm!.pid}/status`, 'utf8'), /^Seccomp:\s+2$/m);
  });

  it('the janitor removes the VM of an executor that was killed, and leaves live ones', async () => {
    const orphanRunner = path.join(path.dirname(fileURLToPath(import.meta.url)), 'boot-and-wait.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', orphanRunner, runDir, JSON.stringify(image)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let qemuPid = 0;
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (c: Buffer) => { out += c.toString(); if (out.includes('\n')) resolve(out.trim()); });
        child.once('exit', (code) => reject(new Error(`the booting executor exited ${code}`)));
      });
      const [, pid, dir] = /^up (\d+) (\S+)$/.exec(line)!;
      qemuPid = Number(pid);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      assert.ok(isAlive(qemuPid), 'QEMU should outlive the killed executor');
      assert.deepEqual(await reapOrphanedVms(runDir), [dir]);
      assert.equal(isAlive(qemuPid), false);
      assert.equal(fs.existsSync(dir!), false);
      // This process's own VM is untouched and still answers.
      assert.ok(fs.existsSync(vm!.dir));
      assert.equal((await vm!.run('echo alive', 30)).stdout, 'alive\n');
    } finally {
      child.kill('SIGKILL');
      if (qemuPid && isAlive(qemuPid)) process.kill(qemuPid, 'SIGKILL');
    }
  });

  it('teardown kills QEMU and removes its files', async () => {
    const { pid, dir } = vm!;
    assert.ok(isAlive(pid));
    assert.ok(fs.existsSync(`${dir}/agent.sock`));
    await vm!.teardown();
    vm = undefined;
    assert.equal(isAlive(pid), false);
    assert.equal(fs.existsSync(dir), false);
    assert.deepEqual(fs.readdirSync(runDir).filter((f) => f.startsWith(VM_DIR_PREFIX)), []);
  });

  it('a guest that never boots is reported with its console, and leaves nothing behind', async () => {
    const broken = { ...image, initrdPath: `${runDir}/missing.cpio` };
    await assert.rejects(QemuVm.boot({ image: broken, runDir, accelerator: 'tcg', memoryMiB: 128, cpus: 1, bootTimeoutMs: 60_000 }), /did not boot: .*error reading initrd .*missing\.cpio/s);
    assert.deepEqual(fs.readdirSync(runDir), []);
  });
});

describe('accelerator choice', { timeout: 120_000 }, () => {
  it('uses TCG when /dev/kvm is missing, and after a KVM test boot that does not answer', async () => {
    const image = await cachedGuestImage();
    const runDir = makeTempDir('sandfleet-vm-probe-');
    try {
      assert.deepEqual(await chooseAccelerator({ image, runDir, kvmDevice: `${runDir}/no-kvm` }), { accelerator: 'tcg', reason: `${runDir}/no-kvm is absent or not accessible` });
      assert.match((await chooseAccelerator({ image, runDir, cpuinfo: 'flags\t: fpu sse2 hypervisor\n' })).reason, /no vmx\/svm flag/);
      // Claim VMX so the probe boots under KVM; here (no /dev/kvm, or a nested PVM one that
      // crawls) that boot cannot answer within 3 s, and TCG is chosen with the reason.
      const real = fs.readFileSync('/proc/cpuinfo', 'utf8');
      if (!/\b(vmx|svm)\b/.test(real)) {
        const choice = await chooseAccelerator({ image, runDir, kvmDevice: fs.existsSync('/dev/kvm') ? '/dev/kvm' : '/dev/null', cpuinfo: 'flags\t: fpu vmx\n', bootTimeoutMs: 3_000 });
        assert.equal(choice.accelerator, 'tcg');
        assert.match(choice.reason, /^a KVM test guest failed: the VM did not boot/);
      }
      assert.deepEqual(fs.readdirSync(runDir), []);
    } finally {
      removeTempDir(runDir);
    }
  });
});
