import assert from 'node:assert/strict';
import { GvisorRuntime } from '../../src/sandbox/oci/gvisor.js';
import { makeRuntimeDeps } from '../../src/sandbox/shared/host.js';
import { defineSandboxSuite, LIMITS, processesInJobCgroup } from './suite.js';

defineSandboxSuite('gvisor', {
  makeRuntime: (config, overrides) => new GvisorRuntime(makeRuntimeDeps(config, overrides)),
  rootConfinement: 'gvisor',
  extraTests: ({ prepare, run, test }) => {
    // gVisor's guest tasks are not host threads, so the job's pids limit cannot stop a fork bomb
    // inside it (see GVISOR_PIDS_HEADROOM): it must end at the memory limit, alone.
    test('ends a fork bomb at the memory limit without touching another job running beside it', async () => {
      const ticks = 12;
      const bomb = await prepare({ 'bomb.sh': 'set +e; bomb() { bomb | bomb & }; bomb; sleep 20; echo "still here"' });
      const steady = await prepare({ 'steady.sh': `i=0; while [ $i -lt ${ticks} ]; do echo "tick-$i"; i=$((i+1)); sleep 0.5; done; echo steady-done` });
      try {
        const [b, s] = await Promise.all([
          run(bomb.sandbox, 'bomb.sh', { signal: AbortSignal.timeout(120_000) }),
          run(steady.sandbox, 'steady.sh', { signal: AbortSignal.timeout(120_000) }),
        ]);
        assert.notEqual(b.exitCode, 0, `the bomb did not end the step: ${b.stdout.slice(-300)}`);
        assert.match(b.failure ?? '', new RegExp(`^killed: out of memory \\(limit ${LIMITS.memoryBytes / 1048576} MiB\\)$`), `${b.exitCode} ${b.failure} ${b.stderr.slice(-300)}`);
        assert.equal(s.exitCode, 0, s.stderr);
        assert.deepEqual(s.stdout.trim().split('\n'), [...Array.from({ length: ticks }, (_, i) => `tick-${i}`), 'steady-done']);
        // Nothing of the bomb is left on the host.
        assert.deepEqual(await processesInJobCgroup(bomb.jobId), []);
      } finally {
        await bomb.sandbox.teardown();
        await steady.sandbox.teardown();
      }
    });
  },
});
