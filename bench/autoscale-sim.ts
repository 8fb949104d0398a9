/**
 * Fleet simulator: Sourcegraph's scaling rule (queue size / jobs_per_instance_scaling) against a
 * wait-time target rule, on each cloud's autoscaler, for steady, bursty and daily arrivals.
 *   node --import tsx bench/autoscale-sim.ts [--help]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { generateJobs, PATTERNS, type DurationShape, type Pattern } from './autoscale/arrivals.js';
import { CLOUDS, GCP_METRIC_LAG, GCP_STABILIZATION_PERIOD, AWS_DEFAULT_COOLDOWN, type Cloud } from './autoscale/clouds.js';
import { sourcegraphRule, waitTargetRule } from './autoscale/rules.js';
import { FleetParamsError, simulate, validateFleet, type FleetParams } from './autoscale/simulator.js';
import { formatTable, summarise, TABLE_HEADER, tableRows } from './autoscale/summary.js';

const OPTIONS = {
  'jobs-per-instance': { default: '20', help: "Terraform's jobs_per_instance_scaling (Google module default)" },
  'max-jobs': { default: '2', help: 'EXECUTOR_MAXIMUM_NUM_JOBS: jobs one instance runs at once (Google module default)' },
  min: { default: '1', help: 'min_replicas' },
  max: { default: '10', help: 'max_replicas' },
  boot: { default: '120', help: 'seconds from launch until an instance takes jobs' },
  duration: { default: '300', help: 'mean job run time, seconds' },
  'duration-shape': { default: 'exponential', help: 'exponential | fixed' },
  rate: { default: '72', help: 'mean arrivals per hour (every pattern has this mean)' },
  hours: { default: '24', help: 'hours of arrivals; the run continues until every job is done' },
  burst: { default: '50', help: 'jobs per batch in the bursty pattern' },
  swing: { default: '0.8', help: 'daily pattern: rate swing as a fraction of the mean' },
  'target-wait': { default: '60', help: "the wait-time rule's target for the newest queued job, seconds" },
  seed: { default: '1', help: 'PRNG seed; the same seed gives the same table' },
  pattern: { default: PATTERNS.join(','), help: `comma-separated: ${PATTERNS.join(', ')}` },
  cloud: { default: CLOUDS.join(','), help: 'comma-separated: gcp (managed instance group), aws (CloudWatch alarms)' },
} as const;

type OptionName = keyof typeof OPTIONS;

class UsageError extends Error {}

function usage(): string {
  const lines = Object.entries(OPTIONS).map(([name, o]) => `  --${name.padEnd(18)} ${o.help} (default ${o.default})`);
  return ['usage: node --import tsx bench/autoscale-sim.ts [options]', '', ...lines, '  --help               this text'].join('\n');
}

function parse(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { help: { type: 'boolean' }, ...Object.fromEntries(Object.keys(OPTIONS).map((k) => [k, { type: 'string' as const }])) },
  });
  const given = values as Record<string, string | boolean | undefined>;
  const text = (name: OptionName) => (given[name] as string | undefined) ?? OPTIONS[name].default;
  const number = (name: OptionName, check: (n: number) => boolean = (n) => n >= 0) => {
    const n = Number(text(name));
    if (!Number.isFinite(n) || !check(n)) throw new UsageError(`--${name}: not a valid value: ${text(name)}`);
    return n;
  };
  const list = <T extends string>(name: OptionName, allowed: readonly T[]): T[] => {
    const items = text(name).split(',');
    const unknown = items.filter((i) => !allowed.includes(i as T));
    if (unknown.length > 0 || items.length === 0) throw new UsageError(`--${name}: unknown ${unknown.join(', ')} (choose from ${allowed.join(', ')})`);
    return items as T[];
  };
  const shapes = list<DurationShape>('duration-shape', ['exponential', 'fixed']);
  if (shapes.length !== 1) throw new UsageError('--duration-shape: give one of exponential, fixed');
  const shape = shapes[0]!;
  return {
    help: values.help === true,
    jobsPerInstanceScaling: number('jobs-per-instance', (n) => n > 0),
    fleet: { slotsPerInstance: number('max-jobs'), minReplicas: number('min'), maxReplicas: number('max'), bootTime: number('boot') } satisfies FleetParams,
    workload: {
      meanDuration: number('duration', (n) => n > 0),
      durationShape: shape,
      jobsPerHour: number('rate', (n) => n > 0),
      hours: number('hours', (n) => n > 0 && n <= 24 * 14),
      burstSize: number('burst', (n) => Number.isInteger(n) && n >= 1),
      dailySwing: number('swing', (n) => n >= 0 && n <= 1),
      seed: number('seed', Number.isInteger),
    },
    targetWait: number('target-wait'),
    patterns: list<Pattern>('pattern', PATTERNS),
    clouds: list<Cloud>('cloud', CLOUDS),
  };
}

function main(): void {
  let args: ReturnType<typeof parse>;
  try {
    args = parse(process.argv.slice(2));
    validateFleet(args.fleet);
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof FleetParamsError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS'))) throw error;
    console.error(`${(error as Error).message}\n\n${usage()}`);
    process.exit(2);
  }
  if (args.help) {
    console.log(usage());
    return;
  }
  const started = performance.now();
  const { fleet, workload } = args;
  const rules = [
    sourcegraphRule(args.jobsPerInstanceScaling),
    waitTargetRule({ targetWait: args.targetWait, meanDuration: workload.meanDuration, bootTime: fleet.bootTime, slotsPerInstance: fleet.slotsPerInstance, minReplicas: fleet.minReplicas, maxReplicas: fleet.maxReplicas }),
  ];
  console.log(
    `jobs_per_instance_scaling ${args.jobsPerInstanceScaling}, EXECUTOR_MAXIMUM_NUM_JOBS ${fleet.slotsPerInstance}, replicas ${fleet.minReplicas}..${fleet.maxReplicas}, ` +
      `boot ${fleet.bootTime} s, job duration ${workload.durationShape} mean ${workload.meanDuration} s, ${workload.jobsPerHour} jobs/h for ${workload.hours} h ` +
      `(bursts of ${workload.burstSize}, daily swing ±${workload.dailySwing * 100}%), target wait ${args.targetWait} s, seed ${workload.seed}`,
  );
  console.log(
    `metric every 5 s; gcp: seen ${GCP_METRIC_LAG} s late, scale-in to the peak of the last ${GCP_STABILIZATION_PERIOD} s; ` +
      `aws: ±1 per 60 s alarm period, ${AWS_DEFAULT_COOLDOWN} s cooldown; scale-in drains busy instances`,
  );
  console.log(`machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} CPUs, Node ${process.version}, ${os.platform()} ${os.release()}`);
  for (const pattern of args.patterns) {
    const jobs = generateJobs(pattern, workload);
    const rows = args.clouds.flatMap((cloud) => {
      const runs = rules.map((rule) => ({ name: rule.name, summary: summarise(simulate({ jobs, rule, cloud, fleet })) }));
      return tableRows(cloud, runs, runs[0]!.summary);
    });
    console.log(`\n${pattern} (${jobs.length} jobs)\n${formatTable(TABLE_HEADER, rows)}`);
  }
  console.log(`\nsimulated in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

main();
