/**
 * Discrete-event simulation of an executor fleet: jobs arrive, wait in one FIFO queue, run on
 * instances with a fixed number of slots each (EXECUTOR_MAXIMUM_NUM_JOBS); the coordinator samples
 * the scaling rule's metric every 5 s and a cloud autoscaler resizes the group from it.
 */
import type { JobSpec } from './arrivals.js';
import { makeAutoscaler, type Autoscaler, type Cloud, type Group, type MetricSample } from './clouds.js';
import { EventQueue } from './event-queue.js';
import type { FleetView, ScalingRule } from './rules.js';

export interface FleetParams {
  slotsPerInstance: number;
  minReplicas: number;
  maxReplicas: number;
  /** Seconds from launch until the executor takes jobs. */
  bootTime: number;
}

export interface SimulationInput {
  jobs: readonly JobSpec[];
  rule: ScalingRule;
  cloud: Cloud;
  fleet: FleetParams;
  /** The coordinator's per-queue metric period (SANDFLEET_METRIC_INTERVAL). */
  samplePeriod?: number;
}

export interface SimulationResult {
  /** Seconds each job waited between arrival and start, in job order. */
  waits: number[];
  /** How many times each job completed, in job order. */
  completions: number[];
  instanceHours: number;
  /** Most instances held at once, booting and draining ones included. */
  peakInstances: number;
  /** Fewest instances that were booting or taking jobs at any moment. */
  fewestActiveInstances: number;
  /** Every instance launched, with its life: launch, first job slot, draining spells, end. */
  instances: InstanceRecord[];
  /** Where and when each job ran, in job order. */
  runs: { instance: number; start: number; end: number }[];
  /** Each time the autoscaler changed the group's target size. */
  targetChanges: { time: number; target: number }[];
  endTime: number;
}

type InstanceState = 'booting' | 'up' | 'draining' | 'gone';

export interface InstanceRecord {
  launchedAt: number;
  readyAt?: number;
  goneAt?: number;
  drains: { from: number; to?: number }[];
}

interface Instance extends InstanceRecord {
  id: number;
  state: InstanceState;
  running: number;
}

type SimEvent =
  | { kind: 'arrival'; job: number }
  | { kind: 'jobEnd'; job: number; instance: Instance }
  | { kind: 'booted'; instance: Instance }
  | { kind: 'sample' }
  | { kind: 'evaluate' };

export class FleetParamsError extends Error {}

export function validateFleet(fleet: FleetParams): void {
  const whole = (n: number) => Number.isInteger(n) && n >= 0;
  if (!whole(fleet.minReplicas) || !whole(fleet.maxReplicas) || fleet.maxReplicas < 1 || fleet.minReplicas > fleet.maxReplicas) {
    throw new FleetParamsError(`replicas must be whole numbers with 0 ≤ min ≤ max and max ≥ 1 (got min ${fleet.minReplicas}, max ${fleet.maxReplicas})`);
  }
  if (!whole(fleet.slotsPerInstance) || fleet.slotsPerInstance < 1) throw new FleetParamsError(`jobs per instance must be a whole number ≥ 1 (got ${fleet.slotsPerInstance})`);
  if (!(fleet.bootTime >= 0)) throw new FleetParamsError(`boot time must be ≥ 0 (got ${fleet.bootTime})`);
}

export function simulate(input: SimulationInput): SimulationResult {
  validateFleet(input.fleet);
  return new Simulation(input).run();
}

class Simulation implements Group {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  private readonly events = new EventQueue<SimEvent>();
  /** Every instance ever launched, for the bill; `live` holds those not yet gone. */
  private readonly instances: Instance[] = [];
  private live: Instance[] = [];
  private readonly queue: number[] = [];
  private queueHead = 0;
  private readonly samples: MetricSample[] = [];
  private readonly waits: number[];
  private readonly completions: number[];
  private readonly runs: SimulationResult['runs'];
  private completed = 0;
  private running = 0;
  private now = 0;
  private peakInstances = 0;
  private fewestActive = Infinity;
  private target: number;
  private readonly targetChanges: { time: number; target: number }[] = [];

  constructor(private readonly input: SimulationInput) {
    this.minReplicas = input.fleet.minReplicas;
    this.maxReplicas = input.fleet.maxReplicas;
    this.target = input.fleet.minReplicas;
    this.waits = new Array<number>(input.jobs.length).fill(NaN);
    this.completions = new Array<number>(input.jobs.length).fill(0);
    this.runs = input.jobs.map(() => ({ instance: -1, start: NaN, end: NaN }));
  }

  run(): SimulationResult {
    const { jobs, rule, cloud, fleet } = this.input;
    const autoscaler = makeAutoscaler(cloud, rule.assignment, fleet.minReplicas);
    const samplePeriod = this.input.samplePeriod ?? 5;
    // The fleet has been at its minimum size for a while when the simulation starts.
    for (let i = 0; i < fleet.minReplicas; i++) this.launch(true);
    this.noteFleetSize();
    jobs.forEach((job, index) => this.events.push(job.arrival, { kind: 'arrival', job: index }));
    this.events.push(0, { kind: 'sample' });
    this.events.push(autoscaler.evaluationPeriod, { kind: 'evaluate' });

    while (this.completed < jobs.length) {
      const next = this.events.pop();
      if (!next) break;
      this.now = next.time;
      this.handle(next.event, autoscaler, samplePeriod);
    }
    const endTime = jobs.reduce((end, j) => Math.max(end, j.arrival), this.now);
    const instanceSeconds = this.instances.reduce((sum, i) => sum + (i.goneAt ?? endTime) - i.launchedAt, 0);
    return {
      waits: this.waits,
      completions: this.completions,
      instanceHours: instanceSeconds / 3600,
      peakInstances: this.peakInstances,
      fewestActiveInstances: this.fewestActive,
      instances: this.instances.map(({ launchedAt, readyAt, goneAt, drains }) => ({ launchedAt, readyAt, goneAt, drains })),
      runs: this.runs,
      targetChanges: this.targetChanges,
      endTime,
    };
  }

  private handle(event: SimEvent, autoscaler: Autoscaler, samplePeriod: number): void {
    switch (event.kind) {
      case 'arrival':
        this.queue.push(event.job);
        this.dispatch();
        break;
      case 'jobEnd':
        this.finish(event.job, event.instance);
        break;
      case 'booted':
        if (event.instance.state === 'booting') {
          event.instance.state = 'up';
          event.instance.readyAt = this.now;
        }
        this.dispatch();
        break;
      case 'sample':
        this.samples.push({ time: this.now, value: this.input.rule.metric(this.view()), totalInstances: this.countInstances('booting', 'up', 'draining') });
        this.events.push(this.now + samplePeriod, { kind: 'sample' });
        break;
      case 'evaluate':
        autoscaler.evaluate(this.now, this.samples, this);
        this.events.push(this.now + autoscaler.evaluationPeriod, { kind: 'evaluate' });
        break;
    }
  }

  /** The group's target size: start, re-admit or remove instances; busy ones are drained, not killed. */
  setTarget(target: number): void {
    const wanted = Math.min(this.maxReplicas, Math.max(this.minReplicas, target));
    if (wanted !== this.target) this.targetChanges.push({ time: this.now, target: wanted });
    this.target = wanted;
    const active = this.live.filter((i) => i.state === 'booting' || i.state === 'up');
    if (wanted > active.length) this.grow(wanted - active.length);
    else if (wanted < active.length) this.shrink(active, active.length - wanted);
    this.noteFleetSize();
    this.dispatch();
  }

  private grow(count: number): void {
    // A draining instance is still there: taking it back is quicker than booting a new one.
    for (const instance of this.live) {
      if (count === 0) return;
      if (instance.state === 'draining') {
        instance.state = 'up';
        instance.drains.at(-1)!.to = this.now;
        count--;
      }
    }
    const room = this.maxReplicas - this.countInstances('booting', 'up', 'draining');
    for (let i = 0; i < Math.min(count, room); i++) this.launch(false);
  }

  private shrink(active: Instance[], count: number): void {
    const newestFirst = [...active].reverse();
    const order = [
      ...newestFirst.filter((i) => i.state === 'booting'),
      ...newestFirst.filter((i) => i.state === 'up' && i.running === 0),
      ...newestFirst.filter((i) => i.state === 'up' && i.running > 0),
    ];
    for (const instance of order.slice(0, count)) {
      if (instance.running === 0) this.terminate(instance);
      else {
        instance.state = 'draining';
        instance.drains.push({ from: this.now });
      }
    }
  }

  private launch(ready: boolean): void {
    const instance: Instance = { id: this.instances.length, state: ready ? 'up' : 'booting', running: 0, launchedAt: this.now, readyAt: ready ? this.now : undefined, drains: [] };
    this.instances.push(instance);
    this.live.push(instance);
    if (!ready) this.events.push(this.now + this.input.fleet.bootTime, { kind: 'booted', instance });
  }

  private terminate(instance: Instance): void {
    if (instance.state === 'draining') instance.drains.at(-1)!.to = this.now;
    instance.state = 'gone';
    instance.goneAt = this.now;
    this.live = this.live.filter((i) => i !== instance);
  }

  /** Executors take queued jobs, oldest first, into free slots; the oldest instance fills first. */
  private dispatch(): void {
    const slots = this.input.fleet.slotsPerInstance;
    for (const instance of this.live) {
      while (instance.state === 'up' && instance.running < slots && this.queueHead < this.queue.length) {
        const job = this.queue[this.queueHead++]!;
        instance.running++;
        this.running++;
        const { arrival, duration } = this.input.jobs[job]!;
        this.waits[job] = this.now - arrival;
        this.runs[job] = { instance: instance.id, start: this.now, end: this.now + duration };
        this.events.push(this.now + duration, { kind: 'jobEnd', job, instance });
      }
    }
  }

  private finish(job: number, instance: Instance): void {
    instance.running--;
    this.running--;
    this.completions[job]!++;
    this.completed++;
    if (instance.state === 'draining' && instance.running === 0) {
      this.terminate(instance);
      this.noteFleetSize();
    }
    this.dispatch();
  }

  private view(): FleetView {
    return {
      queued: this.queue.length - this.queueHead,
      running: this.running,
      inService: this.countInstances('up'),
      booting: this.countInstances('booting'),
    };
  }

  private countInstances(...states: InstanceState[]): number {
    return this.live.reduce((n, i) => n + (states.includes(i.state) ? 1 : 0), 0);
  }

  private noteFleetSize(): void {
    this.peakInstances = Math.max(this.peakInstances, this.countInstances('booting', 'up', 'draining'));
    this.fewestActive = Math.min(this.fewestActive, this.countInstances('booting', 'up'));
  }
}
