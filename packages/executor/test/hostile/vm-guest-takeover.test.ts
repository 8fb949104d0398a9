/**
 * A job that takes over its microVM. A step running as root in the guest is chrooted only by the
 * guest's own root, which it can leave (/proc/1/root), so it can do anything the guest can: read
 * and change the guest's files and agent, open its devices, forge agent frames. What must hold:
 * the next job, restored from the same saved idle guest, sees none of it; nothing reaches the
 * host's files; the executor and the coordinator carry on; the VM is gone after each job.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildTestImages, makeTempDir, removeTempDir, startExecutorProcess, type ExecutorProcess, type TestRegistry } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, waitForJobState, type CoordinatorProcess } from '@sandfleet/test-helpers/coordinator';
import { createGitRepository } from '@sandfleet/test-helpers';
import { installCachedGuestImage, logsOf, startVmJobServices, stepOut, submitJob, vmDirsIn, vmJobExecutorEnv } from '../vm/fixtures.js';

describe('hostile job in a microVM (qemu runtime, warm start)', { timeout: 420_000 }, () => {
  let coordinator: CoordinatorProcess;
  let registry: TestRegistry;
  let executor: ExecutorProcess | undefined;
  let stateDir: string;
  let rootImage: string;
  const hostMarker = path.join(makeTempDir('sandfleet-host-marker-', { untilFileEnds: true }), 'host-secret');

  before(async () => {
    fs.writeFileSync(hostMarker, 'host-only-contents\n', { mode: 0o600 });
    stateDir = makeTempDir('sandfleet-vm-hostile-');
    await installCachedGuestImage(stateDir);
    const repo = createGitRepository({ 'README.md': 'hostile\n' });
    ({ registry, coordinator } = await startVmJobServices({ name: 'github.com/sandfleet/hostile-vm', source: repo.path }));
    await registry.push('test/busybox-root', '1', (await buildTestImages()).busyboxRoot);
    rootImage = `${registry.host}/test/busybox-root:1`;
    executor = startExecutorProcess(coordinator.url, ACCESS_TOKEN, { EXECUTOR_RUNTIME: 'qemu', ...vmJobExecutorEnv(stateDir, registry.host) });
  });

  after(async () => {
    await executor?.stop();
    await coordinator?.stop();
    await registry?.stop();
    if (stateDir) removeTempDir(stateDir);
  });

  const run = async (key: string, commands: string[]) => {
    const id = await submitJob(coordinator, { dockerSteps: [{ key, image: rootImage, commands }] });
    return waitForJobState(coordinator, id, ['completed', 'failed', 'errored'], 240_000);
  };

  it('leaves nothing for the next job restored from the same saved guest, and reaches no host file', async () => {
    const attacker = await run('attack', [
      'set +e',
      // Out of the step's chroot into the guest's root, then as much damage as the guest allows.
      'G=/proc/1/root',
      'echo planted > $G/tmp/planted-by-job-a && echo "planted: $(cat $G/tmp/planted-by-job-a)"',
      'echo "echo hijacked" >> $G/sbin/sandfleet-agent && echo agent-modified',
      'echo "nameserver 192.0.2.53" > $G/etc/resolv.conf',
      `cat ${hostMarker} 2>&1 || true; cat $G${hostMarker} 2>&1 || true`,
      // Forged frames on the agent's port: the agent holds it open, so it is busy.
      'for p in $G/dev/vport*; do echo "EXIT 1 0" > $p 2>&1 && echo "forged on $p" || echo "port refused: $p"; done',
      'echo attack-done',
    ]);
    assert.equal(attacker.state, 'completed', JSON.stringify(attacker, null, 2));
    const out = stepOut(attacker, 'step.docker.attack');
    assert.match(out, /stdout: planted: planted/, 'the step did get out of its chroot into the guest (else this test shows nothing)');
    assert.match(out, /stdout: agent-modified/);
    assert.doesNotMatch(out, /host-only-contents/, 'a host file is not visible from the guest');
    assert.doesNotMatch(out, /forged on/, 'the agent port cannot be opened a second time');
    assert.match(out, /stdout: attack-done/, 'the job was reported by the real agent, to its end');
    assert.match(JSON.stringify(logsOf(attacker)), /restored from a saved idle guest/);

    const next = await run('inspect', [
      'G=/proc/1/root',
      'ls $G/tmp/planted-by-job-a 2>&1 || echo not-planted',
      'grep -c hijacked $G/sbin/sandfleet-agent || true',
      'cat $G/etc/resolv.conf 2>&1 || echo no-resolv-conf',
    ]);
    assert.equal(next.state, 'completed', JSON.stringify(next, null, 2));
    const seen = stepOut(next, 'step.docker.inspect');
    assert.match(seen, /stdout: not-planted/, 'a file the first job left in its guest');
    assert.match(seen, /stdout: 0\n/, 'the first job\'s change to the agent');
    assert.doesNotMatch(seen, /192\.0\.2\.53/, 'the first job\'s resolver');
    assert.match(JSON.stringify(logsOf(next)), /restored from a saved idle guest/);
    assert.equal(fs.readFileSync(hostMarker, 'utf8'), 'host-only-contents\n');
    assert.deepEqual(vmDirsIn(path.join(stateDir, 'vm-run')), [], 'no VM left');
    assert.equal((await coordinator.api('GET', '/api/jobs?limit=1')).status, 200, 'the coordinator is unharmed');
  });
});
