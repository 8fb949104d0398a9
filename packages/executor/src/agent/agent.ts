import type { Logger } from 'pino';
import { CoordinatorUnreachableError, JobFencedError, UnexpectedStatusError, type CoordinatorClient, type ExecutorJob } from '../apiclient/client.js';
import type { ExecutorConfig } from '../config.js';
import { runJob, type JobRunnerDeps } from './job-runner.js';
import { JobCanceledError, reportOutcome, type CancelReason, type JobOutcome } from './outcome.js';
import type { Runtime } from '../sandbox/runtime.js';
import { SandfleetError, formatDuration } from '@sandfleet/protocol';

/**
 * The executor's worker loop (docs/protocol.md, "Heartbeat and cancellation") as a state machine:
 *
 *   starting ──ping answered──▶ running ──drain()──▶ draining ──last job reported──▶ stopped
 *       └────────────drain() before the instance answered─────────────────────────────┘
 *
 * - starting: a ping heartbeat every second until the instance answers (job routes require that the
 *   executor has heartbeated at least once).
 * - running: dequeue while a slot is free (again at once after a job, after the poll interval when
 *   the queue was empty; long-poll when the instance offers it); heartbeat every 5 s.
 * - draining (SIGTERM/SIGINT, EXECUTOR_MAX_ACTIVE_TIME, EXECUTOR_NUM_TOTAL_JOBS): no more dequeues;
 *   running jobs finish and are reported; heartbeats continue so they are not reset meanwhile.
 *
 * A finished job keeps its slot until its result is accepted: the last log output and the mark are
 * retried with backoff through any coordinator outage, the job stays in every heartbeat meanwhile
 * (so the coordinator does not reset it), and each mark retry is preceded by a heartbeat, so that
 * a coordinator that comes back hears from the job before the mark. The attempt is given up only
 * when the coordinator fences it out: a 401/403/404 on a job route, or a heartbeat answer that no
 * longer lists the job.
 */
export type AgentState = 'starting' | 'running' | 'draining' | 'stopped';

/** An operation was called in a state that does not allow it. */
export class IllegalStateError extends SandfleetError {
  constructor(operation: string, state: AgentState) {
    super(`cannot ${operation}: agent is ${state}`);
  }
}

export interface AgentOptions {
  config: ExecutorConfig;
  client: CoordinatorClient;
  runtime: Runtime;
  log: Logger;
  /** Replaces runJob (test seam). */
  runJob?: (job: ExecutorJob, deps: JobRunnerDeps, signal: AbortSignal) => Promise<JobOutcome>;
  /** Called on every state change (test seam). */
  onStateChange?: (state: AgentState) => void;
  /** Called after a job's outcome was reported, or dropped for a lost job (test seam). */
  onJobDone?: (job: ExecutorJob, outcome: JobOutcome) => void;
  /** Delay between startup pings, in ms. @default 1000 */
  pingIntervalMs?: number;
  /** Time between log uploads, in ms. @default 1000 */
  logFlushIntervalMs?: number;
}

interface RunningJob {
  job: ExecutorJob;
  controller: AbortController;
  /** Set once the outcome is known: cancellations no longer apply. */
  reporting: boolean;
  done: Promise<void>;
}

export class Agent {
  readonly #options: AgentOptions;
  readonly #log: Logger;
  #state: AgentState = 'starting';
  readonly #running = new Map<string, RunningJob>();
  #dequeued = 0;
  #wakers = new Set<() => void>();
  #dequeueAbort = new AbortController();
  #heartbeatTimer: NodeJS.Timeout | undefined;
  /** The heartbeat being sent; resolves true when the coordinator answered it. */
  #heartbeatInFlight: Promise<boolean> | undefined;
  #maxActiveTimer: NodeJS.Timeout | undefined;
  #cleanupTimer: NodeJS.Timeout | undefined;
  #cleanupInFlight: Promise<void> | undefined;
  #started = false;

  constructor(options: AgentOptions) {
    this.#options = options;
    this.#log = options.log;
  }

  get state(): AgentState {
    return this.#state;
  }

  /** Heartbeat IDs of the jobs running now. */
  runningJobUids(): string[] {
    return [...this.#running.keys()];
  }

  /** Number of jobs dequeued since start. */
  get dequeuedCount(): number {
    return this.#dequeued;
  }

  /** Runs until the agent has drained and stopped. */
  async run(): Promise<void> {
    if (this.#started) throw new IllegalStateError('run', this.#state);
    this.#started = true;
    const { config } = this.#options;
    this.#log.info(
      { executorName: config.executorName, queues: config.queueNames, maximumNumJobs: config.maximumNumJobs },
      'executor starting',
    );
    // Leftovers of an executor that died (VMs keep running without it) go before any new job starts.
    if (this.#options.runtime.reapLeftovers) {
      await this.#reapLeftovers();
      this.#cleanupTimer = setInterval(() => void this.#reapLeftovers(), config.cleanupTaskIntervalMs);
    }
    const connected = await this.#connect();
    if (connected) {
      this.#setState('running');
      this.#heartbeatTimer = setInterval(() => void this.#heartbeat(), config.heartbeatIntervalMs);
      if (config.maxActiveTimeMs > 0) {
        this.#maxActiveTimer = setTimeout(() => this.drain('EXECUTOR_MAX_ACTIVE_TIME elapsed'), config.maxActiveTimeMs);
      }
      await this.#dequeueLoop();
      while (this.#running.size > 0) await Promise.all([...this.#running.values()].map((r) => r.done));
    }
    clearInterval(this.#heartbeatTimer);
    clearInterval(this.#cleanupTimer);
    await this.#cleanupInFlight;
    clearTimeout(this.#maxActiveTimer);
    this.#setState('stopped');
    this.#log.info({ dequeued: this.#dequeued }, 'executor stopped');
  }

  /** Stops dequeuing; running jobs finish and are reported. Idempotent. */
  drain(why: string): void {
    if (this.#state === 'draining' || this.#state === 'stopped') return;
    this.#log.info({ why, runningJobs: this.runningJobUids() }, 'draining: no new jobs, waiting for running jobs');
    this.#setState('draining');
    this.#dequeueAbort.abort(new Error(`draining: ${why}`));
    this.#wake();
  }

  /** Aborts every running job (a second SIGTERM). They are reported as errored. */
  abortJobs(reason: CancelReason = 'shutdown'): void {
    this.drain('jobs aborted');
    for (const running of this.#running.values()) {
      // A result still waiting for the coordinator is given up: the coordinator resets the job.
      if (running.reporting) this.#options.client.fenceJob(running.job, 'executor shut down before the result was delivered');
      else this.#abortJob(running, reason);
    }
  }

  #reapLeftovers(): Promise<void> {
    this.#cleanupInFlight ??= (async () => {
      try {
        const removed = (await this.#options.runtime.reapLeftovers?.()) ?? [];
        if (removed.length) this.#log.warn({ removed }, 'removed leftovers of an executor that died');
      } catch (err) {
        this.#log.warn({ err: errorInfo(err) }, 'cleanup of leftovers failed');
      }
    })().finally(() => {
      this.#cleanupInFlight = undefined;
    });
    return this.#cleanupInFlight;
  }

  #setState(state: AgentState): void {
    this.#state = state;
    this.#options.onStateChange?.(state);
  }

  async #connect(): Promise<boolean> {
    let attempts = 0;
    while (this.#state === 'starting') {
      try {
        await this.#options.client.ping(this.#dequeueAbort.signal);
        const extensions = [...this.#options.client.extensions];
        this.#log.info({ frontendUrl: this.#options.config.frontendUrl, extensions }, 'connected to coordinator');
        return true;
      } catch (err) {
        if (this.#state !== 'starting') break;
        attempts++;
        // Loud at first, then every 30th attempt, so a long outage does not flood the log.
        if (attempts === 1 || attempts % 30 === 0) this.#log.warn({ err: errorInfo(err), attempts }, 'coordinator not reachable yet, retrying');
        await this.#sleep(this.#options.pingIntervalMs ?? 1_000);
      }
    }
    return false;
  }

  async #dequeueLoop(): Promise<void> {
    const { config, client } = this.#options;
    while (this.#state === 'running') {
      if (this.#running.size >= config.maximumNumJobs) {
        await this.#sleep(Number.POSITIVE_INFINITY);
        continue;
      }
      const started = Date.now();
      let jobs: ExecutorJob[];
      try {
        jobs = await client.dequeueUpTo(this.#freeSlots(), { waitSeconds: config.longPollWaitSeconds, signal: this.#dequeueAbort.signal });
      } catch (err) {
        if (this.#state !== 'running') break;
        this.#log.warn({ err: errorInfo(err) }, 'dequeue failed');
        await this.#sleep(config.pollIntervalMs);
        continue;
      }
      if (jobs.length === 0) {
        // A long poll already waited on the instance's side; never poll faster than the interval.
        await this.#sleep(Math.max(0, config.pollIntervalMs - (Date.now() - started)));
        continue;
      }
      // Jobs that arrived are ours even if a drain began meanwhile: run them.
      for (const job of jobs) {
        this.#dequeued++;
        this.#startJob(job);
      }
      if (config.numTotalJobs > 0 && this.#dequeued >= config.numTotalJobs) this.drain('EXECUTOR_NUM_TOTAL_JOBS reached');
    }
  }

  /** Jobs one dequeue may take: the free slots, and no more than EXECUTOR_NUM_TOTAL_JOBS leaves. */
  #freeSlots(): number {
    const { config } = this.#options;
    const free = config.maximumNumJobs - this.#running.size;
    return config.numTotalJobs > 0 ? Math.min(free, config.numTotalJobs - this.#dequeued) : free;
  }

  #startJob(job: ExecutorJob): void {
    const { config } = this.#options;
    const log = this.#log.child({ jobId: job.id, queue: job.queue, jobUid: job.uid });
    const controller = new AbortController();
    const running: RunningJob = { job, controller, reporting: false, done: Promise.resolve() };
    this.#running.set(job.uid, running);
    this.#options.client.openJob(job);
    log.info({ repositoryName: job.repositoryName, commit: job.commit, dockerSteps: job.dockerSteps?.length ?? 0 }, 'job dequeued');
    const deadline = setTimeout(() => this.#abortJob(running, 'timeout'), config.maximumRuntimePerJobMs);
    const deps: JobRunnerDeps = {
      config,
      client: this.#options.client,
      runtime: this.#options.runtime,
      log,
      ...(this.#options.logFlushIntervalMs === undefined ? {} : { logFlushIntervalMs: this.#options.logFlushIntervalMs }),
    };
    running.done = (async () => {
      let outcome: JobOutcome;
      try {
        outcome = await (this.#options.runJob ?? runJob)(job, deps, controller.signal);
      } catch (err) {
        outcome = { status: 'errored', message: err instanceof Error ? err.message : String(err) };
      }
      clearTimeout(deadline);
      running.reporting = true;
      await this.#report(job, outcome, log);
      this.#options.onJobDone?.(job, outcome);
    })().finally(() => {
      this.#options.client.closeJob(job);
      this.#running.delete(job.uid);
      this.#wake();
    });
  }

  #abortJob(running: RunningJob, reason: CancelReason): void {
    if (running.reporting || running.controller.signal.aborted) return;
    const message = {
      user: 'job was canceled',
      lost: 'job is no longer known to the coordinator',
      timeout: `job exceeded maximum execution time of ${formatDuration(this.#options.config.maximumRuntimePerJobMs)}`,
      shutdown: 'executor shut down before the job finished',
    }[reason];
    this.#log.info({ jobUid: running.job.uid, reason }, 'aborting job');
    running.controller.abort(new JobCanceledError(reason, message));
  }

  /**
   * Reports the outcome, retrying until the coordinator takes it or fences the attempt out.
   *
   * Repeating a mark is safe. If a mark reached the coordinator but its answer was lost (the
   * coordinator stopped right after committing it), the retry is answered 404 (or 401: the job
   * token is revoked with the mark): the job is no longer processing under this attempt. That is
   * the same answer as for an attempt that was reset meanwhile; in both cases this executor has
   * nothing more to do, so a fenced-out mark ends the report without completing the job twice.
   */
  async #report(job: ExecutorJob, outcome: JobOutcome, log: Logger): Promise<void> {
    const { client } = this.#options;
    let retried = false;
    const beforeRetry = async () => {
      retried = true;
      if (!(await this.#heartbeatNow())) throw new Error('heartbeat before retrying the result failed');
    };
    try {
      await reportOutcome(client, job, outcome, { beforeRetry });
      log.info({ outcome: outcome.status, ...('reason' in outcome ? { reason: outcome.reason } : {}), ...('message' in outcome ? { message: outcome.message } : {}) }, 'job finished');
    } catch (err) {
      const lost = err instanceof JobFencedError;
      const why = retried ? 'result not taken after a retry: an earlier attempt to report it went through, or the job was reset' : 'job no longer owned by this executor; result dropped';
      log[lost ? 'warn' : 'error']({ err: errorInfo(err), outcome: outcome.status }, lost ? why : 'failed to report job result');
    }
  }

  /** Sends a heartbeat now, or joins the one in flight; true when the coordinator answered. */
  #heartbeatNow(): Promise<boolean> {
    return this.#heartbeatInFlight ?? this.#heartbeat();
  }

  #heartbeat(): Promise<boolean> {
    if (this.#heartbeatInFlight) return this.#heartbeatInFlight;
    if (this.#state === 'stopped') return Promise.resolve(false);
    this.#heartbeatInFlight = this.#sendHeartbeat().finally(() => {
      this.#heartbeatInFlight = undefined;
    });
    return this.#heartbeatInFlight;
  }

  async #sendHeartbeat(): Promise<boolean> {
    // Only jobs in this snapshot are judged by the answer: one dequeued meanwhile is not "unknown".
    const snapshot = [...this.#running.values()];
    try {
      const { knownIds, cancelIds } = await this.#options.client.heartbeat(snapshot.map((r) => r.job.uid));
      const known = new Set(knownIds);
      const cancel = new Set(cancelIds);
      for (const running of snapshot) {
        if (!known.has(running.job.uid)) {
          this.#abortJob(running, 'lost');
          // Also stops log uploads and a result still being retried: the attempt is gone.
          this.#options.client.fenceJob(running.job, 'the coordinator no longer knows the job');
        } else if (cancel.has(running.job.uid)) this.#abortJob(running, 'user');
      }
      return true;
    } catch (err) {
      this.#log.warn({ err: errorInfo(err) }, 'heartbeat failed');
      return false;
    }
  }

  /** Waits `ms`, or less if a slot frees up or a drain begins. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wakers.delete(done);
        resolve();
      };
      const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
      this.#wakers.add(done);
    });
  }

  #wake(): void {
    for (const wake of [...this.#wakers]) wake();
  }
}

/** Compact error fields for the log (pino's default serializer only handles `err` instances). */
function errorInfo(err: unknown): Record<string, unknown> {
  if (err instanceof UnexpectedStatusError) return { type: err.name, message: err.message, status: err.status, body: err.body.slice(0, 500) };
  if (err instanceof CoordinatorUnreachableError) return { type: err.name, message: err.message };
  if (err instanceof Error) return { type: err.name, message: err.message };
  return { message: String(err) };
}
