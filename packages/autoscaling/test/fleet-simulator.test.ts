import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { constantArrivals, generateJobs, PATTERNS, type JobSpec, type Workload } from '../../../bench/autoscale/arrivals.js';
import { CLOUDS, GCP_METRIC_LAG } from '../../../bench/autoscale/clouds.js';
import { instancesForTargetWait, predictedNewestWait, sourcegraphRule, waitTargetRule, type ScalingRule, type WaitTargetParams } from '../../../bench/autoscale/rules.js';
import { simulate, type FleetParams, type SimulationResult } from '../../../bench/autoscale/simulator.js';
import { summarise } from '../../../bench/autoscale/summary.js';

const workload: Workload = { jobsPerHour: 72, hours: 6, meanDuration: 300, durationShape: 'exponential', burstSize: 30, dailySwing: 0.8, seed: 7 };
const fleet: FleetParams = { slotsPerInstance: 2, minReplicas: 1, maxReplicas: 4, bootTime: 120 };
const targetParams = (f: FleetParams, meanDuration: number): WaitTargetParams => ({
  targetWait: 60,
  meanDuration,
  bootTime: f.bootTime,
  slotsPerInstance: f.slotsPerInstance,
  minReplicas: f.minReplicas,
  maxReplicas: f.maxReplicas,
});
const rulesFor = (f: FleetParams, meanDuration: number): ScalingRule[] => [sourcegraphRule(20), waitTargetRule(targetParams(f, meanDuration))];

describe('fleet simulator', () => {
  it('is deterministic: the same seed gives the same jobs and the same results, another seed other jobs', () => {
    for (const pattern of PATTERNS) {
      const jobs = generateJobs(pattern, workload);
      assert.deepEqual(generateJobs(pattern, workload), jobs);
      assert.notDeepEqual(generateJobs(pattern, { ...workload, seed: 8 }), jobs);
      for (const rule of rulesFor(fleet, workload.meanDuration)) {
        for (const cloud of CLOUDS) assert.deepEqual(simulate({ jobs, rule, cloud, fleet }), simulate({ jobs: generateJobs(pattern, workload), rule, cloud, fleet }));
      }
    }
  });

  it('every pattern has about the requested mean rate', () => {
    for (const pattern of PATTERNS) {
      const expected = workload.jobsPerHour * 24;
      const count = generateJobs(pattern, { ...workload, hours: 24 }).length;
      // Poisson counts (of batches, for bursty) stay well within ±25 % over a day at this rate.
      assert.ok(Math.abs(count - expected) < expected * 0.25, `${pattern}: ${count} jobs, expected about ${expected}`);
    }
  });

  it('a constant rate below the minimum fleet capacity with instant boot: no job waits', () => {
    // One instance with 2 slots; a 100 s job every 60 s needs 1.67 slots on average and never 3 at once.
    const f: FleetParams = { slotsPerInstance: 2, minReplicas: 1, maxReplicas: 5, bootTime: 0 };
    const jobs = constantArrivals(500, 60, 100);
    for (const rule of rulesFor(f, 100)) {
      for (const cloud of CLOUDS) {
        const result = simulate({ jobs, rule, cloud, fleet: f });
        assert.deepEqual(result.waits, jobs.map(() => 0), `${rule.name} on ${cloud}`);
        assert.equal(result.peakInstances, 1, `${rule.name} on ${cloud}`);
        // One instance for the whole run: the bill is the run's length.
        assert.ok(Math.abs(result.instanceHours - (499 * 60 + 100) / 3600) < 1e-9);
      }
    }
  });

  it('every job completes exactly once, the group stays within [min, max], and the bill covers the work', () => {
    let drainSpells = 0;
    for (const f of [fleet, { ...fleet, minReplicas: 0, maxReplicas: 3, bootTime: 0 }, { ...fleet, minReplicas: 2, maxReplicas: 2 }]) {
      for (const pattern of PATTERNS) {
        const jobs = generateJobs(pattern, workload);
        const work = jobs.reduce((sum, j) => sum + j.duration, 0);
        for (const rule of rulesFor(f, workload.meanDuration)) {
          for (const cloud of CLOUDS) {
            const what = `${pattern}, ${rule.name} on ${cloud}, replicas ${f.minReplicas}..${f.maxReplicas}`;
            const result = simulate({ jobs, rule, cloud, fleet: f });
            assert.deepEqual(result.completions, jobs.map(() => 1), what);
            assert.ok(result.waits.every((w) => w >= 0), what);
            assert.ok(result.peakInstances <= f.maxReplicas, `${what}: peak ${result.peakInstances}`);
            assert.ok(result.fewestActiveInstances >= f.minReplicas, `${what}: fewest ${result.fewestActiveInstances}`);
            assert.ok(result.targetChanges.every((c) => c.target >= f.minReplicas && c.target <= f.maxReplicas), what);
            assert.ok(result.instanceHours * 3600 * f.slotsPerInstance >= work, `${what}: ${result.instanceHours} instance-hours for ${work} s of jobs`);
            assert.ok(result.instanceHours <= (f.maxReplicas * result.endTime) / 3600 + 1e-9, what);
            assert.equal(summarise(result).jobs, jobs.length);
            assertJobsRanOnLiveInstances(result, what);
            drainSpells += result.instances.reduce((n, i) => n + i.drains.length, 0);
          }
        }
      }
    }
    assert.ok(drainSpells > 0, 'some runs scale in busy instances, so the drain checks above were exercised');
  });

  it('AWS scales by one instance at a time, at most once per cooldown', () => {
    const jobs: JobSpec[] = constantArrivals(200, 0, 300);
    const result = simulate({ jobs, rule: sourcegraphRule(20), cloud: 'aws', fleet: { ...fleet, maxReplicas: 8 } });
    assert.ok(result.targetChanges.length >= 2, 'the burst scales the group out and back in');
    let previous = { time: -Infinity, target: fleet.minReplicas };
    for (const change of result.targetChanges) {
      assert.equal(Math.abs(change.target - previous.target), 1);
      // The Auto Scaling group's default cooldown.
      assert.ok(change.time - previous.time >= 300, `changes at ${previous.time} s and ${change.time} s`);
      previous = change;
    }
  });

  it('Google scales out at once but scales in only after the stabilization period', () => {
    // A burst that 5 instances clear in about 100 s: without stabilization the group would shrink
    // about a minute (the metric lag) after that. A late job keeps the simulation going.
    const jobs: JobSpec[] = [...constantArrivals(100, 0, 10), { arrival: 3000, duration: 10 }];
    const result = simulate({ jobs, rule: sourcegraphRule(20), cloud: 'gcp', fleet: { ...fleet, maxReplicas: 8, bootTime: 0 } });
    const firstOut = result.targetChanges[0]!;
    const firstIn = result.targetChanges.find((c, i) => i > 0 && c.target < result.targetChanges[i - 1]!.target);
    // 100 queued jobs / 20 per instance, from the first sample the autoscaler sees.
    assert.equal(firstOut.target, 5);
    assert.ok(firstIn, 'the group scales back in once the burst is done');
    assert.ok(firstOut.time >= GCP_METRIC_LAG, `out at ${firstOut.time} s, before the metric reached the autoscaler`);
    // Google's stabilization period: 10 minutes, longer than Terraform's 300 s initialization period.
    assert.ok(firstIn.time - firstOut.time >= 600, `out at ${firstOut.time} s, in at ${firstIn.time} s`);
  });

  it('the wait-time rule waits less than the queue-size rule on steady arrivals', () => {
    const jobs = generateJobs('steady', workload);
    for (const cloud of CLOUDS) {
      const [baseline, target] = rulesFor(fleet, workload.meanDuration).map((rule) => summarise(simulate({ jobs, rule, cloud, fleet })));
      assert.ok(target!.waitP95 < baseline!.waitP95, `${cloud}: p95 ${target!.waitP95} s against ${baseline!.waitP95} s`);
    }
  });
});

/** A job starts only on a booted instance that is not draining, and its instance outlives it. */
function assertJobsRanOnLiveInstances(result: SimulationResult, what: string): void {
  result.runs.forEach((run, job) => {
    const instance = result.instances[run.instance];
    assert.ok(instance, `${what}: job ${job} ran nowhere`);
    assert.ok(instance.readyAt !== undefined && instance.readyAt <= run.start, `${what}: job ${job} started at ${run.start} s on an instance ready at ${instance.readyAt}`);
    assert.ok(run.end <= (instance.goneAt ?? Infinity), `${what}: job ${job} ended at ${run.end} s, its instance went at ${instance.goneAt} s`);
    const drain = instance.drains.find((d) => run.start > d.from && run.start < (d.to ?? Infinity));
    assert.equal(drain, undefined, `${what}: job ${job} started at ${run.start} s on an instance draining since ${drain?.from} s`);
  });
}

describe('wait-time target rule', () => {
  const params: WaitTargetParams = { targetWait: 60, meanDuration: 100, bootTime: 50, slotsPerInstance: 2, minReplicas: 1, maxReplicas: 10 };

  it('predicts the newest queued job’s wait from free slots, completions and boot time', () => {
    const busy = { queued: 10, running: 4, inService: 2, booting: 0 };
    // No new instances: 10 jobs ahead on 4 busy slots freeing one per 25 s.
    assert.equal(predictedNewestWait(busy, 2, params), 250);
    // Two more instances: by boot (50 s) 2 jobs started on old slots, 4 on new ones, the last 4 on 8 slots.
    assert.equal(predictedNewestWait(busy, 4, params), 50 + (4 * 100) / 8);
    // Enough new slots for everyone left at boot time.
    assert.equal(predictedNewestWait(busy, 6, params), 50);
    assert.equal(predictedNewestWait({ queued: 3, running: 1, inService: 2, booting: 0 }, 2, params), 0);
  });

  it('asks for the fewest instances that meet the target, within min and max', () => {
    const idle = { queued: 0, running: 0, inService: 3, booting: 0 };
    assert.equal(instancesForTargetWait(idle, params), 1);
    assert.equal(instancesForTargetWait(idle, { ...params, minReplicas: 2 }), 2);
    // 2 queued on 2 free slots: no more needed.
    assert.equal(instancesForTargetWait({ queued: 2, running: 2, inService: 2, booting: 0 }, params), 2);
    // Boot (50 s) is within the 60 s target: 8 jobs are left at boot time, so 4 new instances start
    // them all then; 3 new ones would leave 2 jobs until 70 s.
    assert.equal(predictedNewestWait({ queued: 10, running: 4, inService: 2, booting: 0 }, 5, params), 70);
    assert.equal(instancesForTargetWait({ queued: 10, running: 4, inService: 2, booting: 0 }, params), 6);
    assert.equal(instancesForTargetWait({ queued: 1000, running: 4, inService: 2, booting: 0 }, params), 10);
    // Busy instances are never given up, whatever the minimum.
    assert.equal(instancesForTargetWait({ queued: 0, running: 7, inService: 4, booting: 0 }, params), 4);
  });
});
