/**
 * How each cloud's autoscaler turns the published metric into a group size, as the Terraform
 * modules configure them (docs/deploy.md, "Autoscaling"). Delays the clouds do not document exactly
 * are constants here, named for what they stand for.
 */

export interface MetricSample {
  time: number;
  value: number;
  /** Every instance the group holds at that moment, booting and draining ones included. */
  totalInstances: number;
}

/** What an autoscaler may do to the group. */
export interface Group {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  setTarget(instances: number): void;
}

export interface Autoscaler {
  /** Seconds between two evaluations. */
  readonly evaluationPeriod: number;
  evaluate(now: number, samples: readonly MetricSample[], group: Group): void;
}

export const CLOUDS = ['gcp', 'aws'] as const;
export type Cloud = (typeof CLOUDS)[number];

export function makeAutoscaler(cloud: Cloud, assignment: number, minReplicas: number): Autoscaler {
  return cloud === 'gcp' ? new ManagedInstanceGroupAutoscaler(assignment) : new CloudWatchAlarmScaler(assignment, minReplicas);
}

const clamp = (value: number, group: Group) => Math.min(group.maxReplicas, Math.max(group.minReplicas, value));

/** Seconds before a point written to Cloud Monitoring reaches the autoscaler (assumed). */
export const GCP_METRIC_LAG = 60;
/** Seconds between two recommendations of the MIG autoscaler (assumed; Google says "constantly"). */
export const GCP_EVALUATION_PERIOD = 15;
/** Terraform's `cooldown_period`: the initialization period. */
export const GCP_INITIALIZATION_PERIOD = 300;
/** The autoscaler keeps the peak recommendation of the last 10 minutes, or of the initialization period if longer. */
export const GCP_STABILIZATION_PERIOD = Math.max(600, GCP_INITIALIZATION_PERIOD);

/**
 * Google's per-group custom metric with `single_instance_assignment`: recommended size =
 * ceil(metric / assignment), clamped; scaling out follows at once, scaling in only to the peak
 * recommendation over the stabilization period.
 */
class ManagedInstanceGroupAutoscaler implements Autoscaler {
  readonly evaluationPeriod = GCP_EVALUATION_PERIOD;
  private recommendations: { time: number; size: number }[] = [];

  constructor(private readonly assignment: number) {}

  evaluate(now: number, samples: readonly MetricSample[], group: Group): void {
    const visible = latestBefore(samples, now - GCP_METRIC_LAG);
    if (!visible) return;
    this.recommendations.push({ time: now, size: clamp(Math.ceil(visible.value / this.assignment), group) });
    this.recommendations = this.recommendations.filter((r) => r.time > now - GCP_STABILIZATION_PERIOD);
    group.setTarget(Math.max(...this.recommendations.map((r) => r.size)));
  }
}

function latestBefore(samples: readonly MetricSample[], time: number): MetricSample | undefined {
  for (let i = samples.length - 1; i >= 0; i--) if (samples[i]!.time <= time) return samples[i];
  return undefined;
}

function samplesSince(samples: readonly MetricSample[], time: number): readonly MetricSample[] {
  let first = samples.length;
  while (first > 0 && samples[first - 1]!.time >= time) first--;
  return samples.slice(first);
}

/** CloudWatch alarms evaluate one 60-second period each minute (Terraform: period 60, 1 of 1 datapoints). */
export const AWS_ALARM_PERIOD = 60;
/** The Auto Scaling group's default cooldown, which simple scaling policies wait out after each activity. */
export const AWS_DEFAULT_COOLDOWN = 300;

/**
 * AWS: alarms on CEIL(max queue size / jobs_per_instance_scaling) − max GroupTotalInstances over the
 * last minute; above 0 runs the +1 policy, below 0 the −1 policy. Both are simple scaling policies
 * (Terraform sets no policy type), so after each change the group ignores alarms for the cooldown.
 * An alarm in ALARM state runs its Auto Scaling action again every period.
 */
class CloudWatchAlarmScaler implements Autoscaler {
  readonly evaluationPeriod = AWS_ALARM_PERIOD;
  private desired: number;
  private cooldownUntil = -Infinity;

  constructor(
    private readonly assignment: number,
    minReplicas: number,
  ) {
    this.desired = minReplicas;
  }

  evaluate(now: number, samples: readonly MetricSample[], group: Group): void {
    const period = samplesSince(samples, now - AWS_ALARM_PERIOD).filter((s) => s.time < now);
    if (period.length === 0 || now < this.cooldownUntil) return;
    const queueSize = Math.max(...period.map((s) => s.value));
    const instanceCount = Math.max(...period.map((s) => s.totalInstances));
    const difference = Math.ceil(queueSize / this.assignment) - instanceCount;
    const next = clamp(this.desired + Math.sign(difference), group);
    if (next === this.desired) return;
    this.desired = next;
    this.cooldownUntil = now + AWS_DEFAULT_COOLDOWN;
    group.setTarget(next);
  }
}
