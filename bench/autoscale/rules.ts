/**
 * Scaling rules: what the coordinator publishes every sample period. The cloud autoscaler turns the
 * published value into a group size as ceil(value / assignment) clamped to [min, max] (see clouds.ts).
 */

/** What the coordinator can see of the fleet when it samples. */
export interface FleetView {
  queued: number;
  running: number;
  /** Instances that have booted and still take jobs. */
  inService: number;
  /** Instances started but not yet taking jobs. */
  booting: number;
}

export interface ScalingRule {
  name: string;
  /** The divisor the autoscaler applies: Terraform's `jobs_per_instance_scaling`, or 1 for a published instance count. */
  assignment: number;
  metric(view: FleetView): number;
}

/** Sourcegraph's worker: the queue size (queued + errored + processing); the group divides it by `jobs_per_instance_scaling`. */
export function sourcegraphRule(jobsPerInstanceScaling: number): ScalingRule {
  return { name: 'sourcegraph', assignment: jobsPerInstanceScaling, metric: (view) => view.queued + view.running };
}

export interface WaitTargetParams {
  targetWait: number;
  meanDuration: number;
  bootTime: number;
  slotsPerInstance: number;
  minReplicas: number;
  maxReplicas: number;
}

/**
 * Publishes the instance count under which the newest queued job is predicted to start within the
 * target wait. When no count can do that (boot alone takes longer), the smallest count that starts
 * it within boot time + target; failing that, the maximum.
 */
export function waitTargetRule(params: WaitTargetParams): ScalingRule {
  return { name: 'wait-target', assignment: 1, metric: (view) => instancesForTargetWait(view, params) };
}

export function instancesForTargetWait(view: FleetView, params: WaitTargetParams): number {
  // Busy instances cannot be taken away: their jobs finish first.
  const lowest = Math.max(params.minReplicas, Math.ceil(view.running / params.slotsPerInstance));
  const highest = Math.max(lowest, params.maxReplicas);
  for (const limit of [params.targetWait, params.bootTime + params.targetWait]) {
    for (let n = lowest; n <= highest; n++) if (predictedNewestWait(view, n, params) <= limit) return n;
  }
  return highest;
}

/**
 * Fluid estimate of when the newest queued job starts if the group had `instances` instances: free
 * slots take jobs at once, busy slots free up at slots / mean duration, and instances beyond those in
 * service (booting ones included, conservatively) add their slots after a full boot time.
 */
export function predictedNewestWait(view: FleetView, instances: number, params: WaitTargetParams): number {
  const { meanDuration: d, bootTime: boot, slotsPerInstance: c } = params;
  const slotsUp = Math.max(Math.min(instances, view.inService) * c, view.running);
  const newSlots = Math.max(0, instances - view.inService) * c;
  const behindFreeSlots = view.queued - (slotsUp - view.running);
  if (behindFreeSlots <= 0) return 0;
  const withoutNew = slotsUp > 0 ? (behindFreeSlots * d) / slotsUp : Infinity;
  if (newSlots === 0 || withoutNew <= boot) return withoutNew;
  const leftAtBoot = behindFreeSlots - (boot * slotsUp) / d;
  if (leftAtBoot <= newSlots) return boot;
  return boot + ((leftAtBoot - newSlots) * d) / (slotsUp + newSlots);
}
