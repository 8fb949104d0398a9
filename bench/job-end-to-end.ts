/**
 * End-to-end time of a one-step job, from enqueue to `completed`, through a real coordinator and a
 * real executor process per runtime, with the `shell` runtime (no sandbox) as the baseline in the
 * same run. The step is `true` in the demo image the coordinator serves (pulled once, then cached).
 *   node --import tsx bench/job-end-to-end.ts [--jobs=7] [--runtimes=shell,bwrap,oci,gvisor]
 */
import { startExecutorProcess } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, startCoordinatorServer } from '@sandfleet/test-helpers/coordinator';
import { percentile } from './support.js';

const JOBS = Number(process.argv.find((a) => a.startsWith('--jobs='))?.split('=')[1] ?? 7);
const RUNTIMES = (process.argv.find((a) => a.startsWith('--runtimes='))?.split('=')[1] ?? 'shell,bwrap,oci,gvisor').split(',');

async function measure(runtime: string): Promise<number[]> {
  const c = await startCoordinatorServer('postgres', { SANDFLEET_SERVE_DEMO_IMAGE: 'true' });
  const executor = startExecutorProcess(c.url, ACCESS_TOKEN, {
    EXECUTOR_RUNTIME: runtime,
    EXECUTOR_NETWORK: 'none',
    EXECUTOR_JOB_MEMORY: '512M',
    EXECUTOR_FIRECRACKER_DISK_SPACE: '256M',
    EXECUTOR_DOCKER_REGISTRY_MIRROR_URL: c.url,
    SRC_LOG_LEVEL: 'warn',
  });
  try {
    const times: number[] = [];
    for (let i = 0; i <= JOBS; i++) {
      const started = performance.now();
      const job = await c.admin('POST', '/api/jobs', { queue: 'batches', dockerSteps: [{ image: 'sandfleet/demo:latest', commands: ['true'] }] });
      for (;;) {
        const { state, failureMessage } = await c.admin('GET', `/api/jobs/${job.id}`);
        if (state === 'completed') break;
        if (state !== 'queued' && state !== 'processing') throw new Error(`${runtime}: job ${job.id} ended ${state}: ${failureMessage}\nexecutor output:\n${executor.output()}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      if (i > 0) times.push(performance.now() - started); // the first job pulls the image
    }
    return times.sort((a, b) => a - b);
  } finally {
    await executor.stop();
    await c.close();
  }
}

console.log(`one-step job, enqueue → completed, ${JOBS} jobs per runtime after one warm-up (image cached)`);
let baseline: number | undefined;
for (const runtime of RUNTIMES) {
  const times = await measure(runtime);
  const p50 = percentile(times, 50);
  baseline ??= p50;
  console.log(`${runtime.padEnd(7)} p50 ${p50.toFixed(0)} ms  max ${times.at(-1)!.toFixed(0)} ms  ratio to ${RUNTIMES[0]} ${(p50 / baseline).toFixed(2)}x`);
}
