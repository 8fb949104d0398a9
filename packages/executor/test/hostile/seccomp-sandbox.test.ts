/**
 * A step that makes syscalls outside the seccomp allow-list is refused them inside bwrap, runc and
 * crun (and, by Docker's own default profile, inside docker), while ordinary steps keep working. The probe is a tiny static C program (gcc -static);
 * only syscalls that succeed on this host outside any sandbox are asserted, so a refusal inside
 * can only come from the sandbox's filter.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildTestImages, emptyWorkspace, makeTempDir, startRegistry, taggedJobId, writeScripts, type TestRegistry } from '@sandfleet/test-helpers';
import { capture } from '../../src/process/run.js';
import { BwrapRuntime } from '../../src/sandbox/oci/bwrap.js';
import { OciRuntime } from '../../src/sandbox/oci/oci.js';
import { DockerRuntime } from '../../src/sandbox/docker/docker.js';
import { findBinary, makeRuntimeDeps } from '../../src/sandbox/shared/host.js';
import { startDockerd, type TestDockerd } from '../sandbox/fixtures.js';
import { loadSeccompProfile, resolveSeccomp, SeccompUnavailableError } from '../../src/sandbox/shared/seccomp.js';
import { RuntimeUnavailableError, type Runtime, type RuntimeConfig, type StepSpec } from '../../src/sandbox/runtime.js';

const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
const REFUSED = ['add_key', 'vmsplice', 'userfaultfd', 'personality', 'unshare_newuser', 'clone_newuser'];
/**
 * Docker filters with its daemon's own default profile, which allows vmsplice; everything else
 * probed here it refuses too (keyrings, userfaultfd without CAP_SYS_PTRACE, personality beyond
 * the harmless values, unshare without CAP_SYS_ADMIN, clone with CLONE_NEWUSER).
 */
const REFUSED_BY_DOCKER = REFUSED.filter((s) => s !== 'vmsplice');

function parse(out: string): Record<string, string> {
  return Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => l.split('=', 2) as [string, string]));
}

describe('seccomp allow-list in the sandboxes', { concurrency: false }, () => {
  let dir: string;
  let probe: string | undefined;
  let skip: string | undefined;
  let registry: TestRegistry;
  let onHost: Record<string, string> = {};
  let dockerd: TestDockerd | undefined;
  const workspaces: string[] = [];

  before(async () => {
    dir = makeTempDir('sandfleet-seccomp-');
    // The state dirs below it hold the sandboxes' roots, which unprivileged uids must traverse to.
    await fs.chmod(dir, 0o711);
    probe = path.join(dir, 'probe');
    const cc = await capture(['gcc', '-static', '-O1', '-o', probe, path.join(import.meta.dirname, 'seccomp-probe.c')], { env: ENV }).catch((err: Error) => ({ exitCode: 127, stderr: err.message }));
    if (cc.exitCode !== 0) {
      skip = `cannot build the static probe (gcc -static): ${cc.stderr.trim().split('\n')[0]}`;
      console.log(`# SKIP: ${skip}`);
      return;
    }
    onHost = parse((await capture([probe], { env: ENV })).stdout);
    assert.equal(onHost.getpid, 'ok');
    const images = await buildTestImages();
    registry = await startRegistry();
    await registry.push('test/busybox', '1', images.busybox);
    await registry.push('test/busybox-root', '1', images.busyboxRoot);
    if (findBinary('dockerd')) dockerd = await startDockerd();
  });

  after(async () => {
    await dockerd?.stop();
    await registry?.stop();
    for (const ws of workspaces) await fs.rm(ws, { recursive: true, force: true });
    await fs.rm(dir, { recursive: true, force: true });
  });

  const runtimes: Record<string, (config: RuntimeConfig, seccompProfile?: string) => Runtime> = {
    bwrap: (config, seccompProfile) => new BwrapRuntime(makeRuntimeDeps(config, { seccompProfile })),
    runc: (config, seccompProfile) => new OciRuntime(makeRuntimeDeps(config, { seccompProfile }), 'runc'),
    crun: (config, seccompProfile) => new OciRuntime(makeRuntimeDeps(config, { seccompProfile }), 'crun'),
  };

  // Docker takes no profile from us (see REFUSED_BY_DOCKER), so it is only in the allow-list cases.
  const withDocker: Record<string, (config: RuntimeConfig) => Runtime> = {
    ...runtimes,
    docker: (config) => new DockerRuntime(makeRuntimeDeps(config), dockerd?.host ?? 'unix:///nonexistent/docker.sock'),
  };

  for (const [name, make] of Object.entries(withDocker)) {
    for (const repo of ['test/busybox', 'test/busybox-root']) {
      it(`${name} (${repo}): refuses syscalls outside the allow-list; ordinary steps still run`, async (t) => {
        if (skip) return t.skip(skip);
        const stateDir = path.join(dir, `state-${name}`);
        const runtime = make({ runtime: name === 'bwrap' || name === 'docker' ? name : 'oci', stateDir, registryMirrorUrls: [], imageStore: { allowedPrivateRegistries: ['127.0.0.1'] }, network: 'none', limits: { cpus: 1, memoryBytes: 64 * 1024 * 1024, pids: 64, diskBytes: 64 * 1024 * 1024 } });
        const availability = await runtime.probe();
        if (!availability.available) return t.skip(availability.reason);
        const workspaceDir = await emptyWorkspace();
        workspaces.push(workspaceDir);
        const sandbox = await runtime.prepare({ jobId: taggedJobId(`seccomp-${name}`), workspaceDir, progress: () => {}, signal: AbortSignal.timeout(120_000) });
        try {
          await writeScripts(sandbox.workspaceDir, { 'probe.sh': '/data/probe', 'after.sh': 'echo still fine; ls /data/probe', 'unshare.sh': 'unshare -U true' });
          await fs.copyFile(probe!, path.join(sandbox.workspaceDir, 'probe'));
          await fs.chmod(path.join(sandbox.workspaceDir, 'probe'), 0o755);
          const run = async (script: string) => {
            const out: Buffer[] = [];
            const err: Buffer[] = [];
            const step: StepSpec = { key: `step.${script}`, image: `${registry.host}/${repo}:1`, scriptPath: `.sourcegraph-executor/${script}`, dir: '', env: [] };
            const r = await sandbox.run(step, { onStdout: (c) => out.push(c), onStderr: (c) => err.push(c), signal: AbortSignal.timeout(60_000) });
            return { ...r, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
          };
          const inside = await run('probe.sh');
          assert.equal(inside.exitCode, 0, inside.stderr);
          const got = parse(inside.stdout);
          assert.equal(got.getpid, 'ok', inside.stdout);
          assert.equal(got.fork, 'ok', inside.stdout);
          const checked = (name === 'docker' ? REFUSED_BY_DOCKER : REFUSED).filter((s) => onHost[s] === 'ok');
          assert.ok(checked.length >= 2, `too few probe syscalls work on this host: ${JSON.stringify(onHost)}`);
          for (const s of checked) assert.match(got[s] ?? '', /^errno (1|38)$/, `${s} must be refused inside ${name}: ${inside.stdout}`);
          // busybox's unshare too (glibc-free: it calls unshare(2) directly).
          const ns = await run('unshare.sh');
          assert.notEqual(ns.exitCode, 0, ns.stdout);
          assert.match(ns.stderr + ns.stdout, /unshare\b.*(Operation not permitted|not implemented|No space left)/i);
          // The sandbox is still usable and the host still runs the probe unfiltered.
          const later = await run('after.sh');
          assert.equal(later.exitCode, 0, later.stderr);
          assert.equal(later.stdout, 'still fine\n/data/probe\n');
          assert.equal(parse((await capture([probe!], { env: ENV })).stdout).getpid, 'ok');
        } finally {
          await sandbox.teardown();
        }
      });
    }
  }

  it('a missing or default-allow profile makes the runtimes unavailable rather than unfiltered', async () => {
    const missing = path.join(dir, 'no-such-profile.json');
    assert.throws(() => loadSeccompProfile(missing), (err: unknown) => err instanceof SeccompUnavailableError && /apt-get install golang-github-containers-common/.test(err.message));
    const allowAll = path.join(dir, 'allow-all.json');
    await fs.writeFile(allowAll, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [] }));
    assert.throws(() => loadSeccompProfile(allowAll), SeccompUnavailableError);
    for (const [name, make] of Object.entries(runtimes)) {
      for (const profile of [missing, allowAll]) {
        const config: RuntimeConfig = { runtime: name === 'bwrap' ? 'bwrap' : 'oci', stateDir: path.join(dir, `state-${name}`), registryMirrorUrls: [], imageStore: { allowedPrivateRegistries: ['127.0.0.1'] }, network: 'none', limits: { cpus: 1, memoryBytes: 0, pids: 0, diskBytes: 0 } };
        const runtime = make(config, profile);
        const availability = await runtime.probe();
        assert.equal(availability.available, false, `${name} with ${profile}`);
        // Either the runtime's binary is missing here, or it says the profile is the reason.
        if (!/not installed/.test(availability.reason)) assert.match(availability.reason, /seccomp profile/, availability.reason);
        const workspaceDir = await emptyWorkspace();
        workspaces.push(workspaceDir);
        await assert.rejects(runtime.prepare({ jobId: taggedJobId(`seccomp-none-${name}`), workspaceDir, progress: () => {}, signal: AbortSignal.timeout(60_000) }), RuntimeUnavailableError);
      }
    }
  });

  it('resolves capability and architecture conditions like Docker does', () => {
    const profile = loadSeccompProfile();
    const names = (caps: string[], arch = 'x64') => {
      const resolved = resolveSeccomp(profile, { caps, arch, kernel: '6.1.0' });
      return new Set(resolved.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW').flatMap((r) => r.names));
    };
    assert.equal(resolveSeccomp(profile, { caps: [], arch: 'x64' }).defaultAction === 'SCMP_ACT_ALLOW', false);
    assert.equal(names([]).has('chroot'), false);
    assert.equal(names(['CAP_SYS_CHROOT']).has('chroot'), true);
    assert.equal(names([]).has('bpf'), false);
    assert.equal(names([]).has('arch_prctl'), true);
    assert.equal(names([], 'arm64').has('arch_prctl'), false);
    // Without CAP_SYS_ADMIN, clone and unshare only without CLONE_NEWUSER; clone3 not at all.
    const resolved = resolveSeccomp(profile, { caps: [], arch: 'x64' });
    assert.deepEqual(resolved.syscalls.filter((r) => r.names.includes('clone') || r.names.includes('unshare')).map((r) => r.args?.[0]), [
      { index: 0, value: 0x10000000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' },
      { index: 0, value: 0x10000000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' },
    ]);
    assert.equal(names([]).has('clone3'), false);
    assert.equal(names(['CAP_SYS_ADMIN']).has('clone3'), true);
    assert.deepEqual(resolveSeccomp(profile, { caps: [], arch: 'x64' }).architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  });
});
