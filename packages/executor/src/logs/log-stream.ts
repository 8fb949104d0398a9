import { StringDecoder } from 'node:string_decoder';
import type { Logger } from 'pino';
import { SandfleetError, EXTENSION_LOG_APPEND, type ExecutionLogEntry } from '@sandfleet/protocol';
import type { CoordinatorClient, JobRef } from '../apiclient/client.js';
import { describeBytes, LogBudget } from './log-budget.js';
import { escapeNul } from './log-text.js';
import { JsonChunk } from './json-chunk.js';
import { LinePrefixer } from './line-prefixer.js';
import type { Redactor, StreamRedactor } from './redaction.js';

export { LinePrefixer } from './line-prefixer.js';

/**
 * One execution log entry of a job: it is added when the step starts, new output is sent at most
 * every second (sooner when a full chunk is ready), and a final call carries `exitCode` and
 * `durationMs`. Output is redacted before it is buffered, so no secret is ever held for sending.
 *
 * A step's output can neither take the executor down nor vanish without a word:
 * - every request stays far below the coordinator's body limit (chunks of CHUNK_BODY_BYTES);
 * - while more than a few chunks wait for the coordinator, `onStdout`/`onStderr` return a promise,
 *   and the caller stops reading the step's pipes until it settles, so the step blocks on write;
 * - past the job's log budget output is dropped, and a marker line says how much;
 * - a 4xx answer is final for what it refused (counted, and a marker line says so); other failures
 *   are retried with backoff a bounded number of times.
 */

/** The client calls a log entry needs (a CoordinatorClient, or a fake in tests). */
export type LogClient = Pick<
  CoordinatorClient,
  'addExecutionLogEntry' | 'updateExecutionLogEntry' | 'appendEncodedExecutionLog' | 'supports'
>;

/** The entry could not be written completely; the job must not be reported as successful. */
export class LogFlushError extends SandfleetError {
  constructor(readonly key: string, cause: unknown) {
    super(`failed to upload log entry ${key}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Default time between two uploads of new output, in ms (Sourcegraph: 1s). */
export const LOG_FLUSH_INTERVAL_MS = 1_000;
/**
 * How long the first output of an entry waits before it is uploaded: long enough that a step which
 * ends at once sends its output with its exit code in one request, short enough that readers still
 * see a step start promptly.
 */
export const FIRST_OUTPUT_DELAY_MS = 25;

/**
 * The most one appended chunk's `out` takes in a request body, as JSON-encoded UTF-8: a tenth of the
 * coordinator's default body limit (SANDFLEET_MAX_BODY_BYTES, 10 MiB).
 */
export const CHUNK_BODY_BYTES = 1024 * 1024;

/** Output waiting for the coordinator (in characters) above which the step's pipes are paused. */
export const BACKPRESSURE_HIGH_CHARS = 4 * CHUNK_BODY_BYTES;
/** ... and below which they are read again. */
const BACKPRESSURE_LOW_CHARS = 2 * CHUNK_BODY_BYTES;
/** Emptied chunks kept for reuse: enough for the backlog the backpressure allows, and the one being filled. */
const SPARE_CHUNKS = BACKPRESSURE_HIGH_CHARS / CHUNK_BODY_BYTES + 2;

/**
 * Without log-append every update resends the entry's whole `out`, so an entry is capped at this many
 * bytes there: each update stays well under a 10 MiB body limit, and the resends stay cheap.
 */
export const UPDATE_MODE_MAX_OUT_BYTES = 4 * 1024 * 1024;

export interface RetryPolicy {
  /** Tries per request, the first included. */
  attempts: number;
  /** Wait before the first retry, doubled per retry up to `maxDelayMs`. */
  baseDelayMs: number;
  maxDelayMs: number;
}

/** 5xx and unreachable: about 8 s of retries (the client adds its own for connection failures). */
export const DEFAULT_LOG_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 250, maxDelayMs: 4_000 };

export interface StepLogOptions {
  client: LogClient;
  job: JobRef;
  /** Entry key, e.g. `setup.git.fetch` or `step.docker.0`. */
  key: string;
  /** The command as run; redacted here before it is sent. */
  command: readonly string[];
  redactor: Redactor;
  /** Time between uploads of new output, in ms. @default 1000 */
  flushIntervalMs?: number;
  /** The job's log budget, shared by its entries. @default a budget of DEFAULT_MAX_LOG_BYTES for this entry alone */
  budget?: LogBudget;
  retry?: Partial<RetryPolicy>;
  log?: Logger | undefined;
}

/** bytes → text → redaction → NUL made visible → prefixed lines, for one of stdout/stderr. */
class OutputChannel {
  readonly #decoder = new StringDecoder('utf8');
  readonly #redactor: StreamRedactor;
  readonly #lines: LinePrefixer;

  constructor(redactor: Redactor, prefix: string) {
    this.#redactor = redactor.stream();
    this.#lines = new LinePrefixer(prefix);
  }

  /** The processed output, as strings whose concatenation it is (a long line is never joined into one). */
  push(chunk: Buffer): string[] {
    return this.#lines.pushPieces(escapeNul(this.#redactor.push(this.#decoder.write(chunk))));
  }

  end(): string[] {
    const text = this.#redactor.push(this.#decoder.end()) + this.#redactor.end();
    return [...this.#lines.pushPieces(escapeNul(text)), ...this.#lines.endPieces()];
  }
}

interface FinalFields {
  exitCode: number;
  durationMs: number;
}

interface PendingChunk {
  seq: number;
  out: JsonChunk;
  final?: FinalFields;
  /** The marker lines are added to `out` when the chunk is first sent, so they count every loss before it. */
  withMarkers?: boolean;
  /** A final chunk resent after a refusal, carrying only the marker lines. */
  markersOnly?: boolean;
  /** Bytes of the step's output in `out`, set when marker lines are added: a loss counts only output. */
  outputBytes?: number;
}

/** A write the coordinator answered and refused (4xx): sending it again cannot succeed. */
function refusedStatus(err: unknown): number | undefined {
  // Duck-typed so any client error that carries an HTTP status qualifies.
  const status = (err as { status?: unknown } | null)?.status;
  if (typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  // Timeouts and rate limits are worth another try.
  return status === 408 || status === 429 ? undefined : status;
}

type SendOutcome = { ok: true } | { ok: false; refused: number | undefined; error: unknown };

/** Output an entry has given up on, by cause, for the marker lines. */
interface Losses {
  /** Past the budget. */
  truncatedBytes: number;
  truncatedBy: string;
  /** Refused by the coordinator with a 4xx. */
  refusedBytes: number;
  refusedStatuses: Set<number>;
  /** Not accepted after every retry. */
  unsentBytes: number;
}

export class StepLog {
  readonly key: string;
  readonly #options: StepLogOptions;
  readonly #retry: RetryPolicy;
  readonly #command: string[];
  readonly #stdout: OutputChannel;
  readonly #stderr: OutputChannel;
  readonly #budget: LogBudget;
  /** Decided once at start: appending and replacing cannot be mixed within one entry. */
  #appendMode = false;
  #startTime = '';
  #startedAtMs = 0;
  #entryId: number | undefined;
  #startError: unknown;
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #firstOutputTimer: NodeJS.Timeout | undefined;
  #flushQueued = false;
  #finished = false;
  /** Set by the timer: the next flush also sends a partly filled chunk. */
  #remainderDue = false;
  #endsWithNewline = true;
  /** The step's first output is uploaded within FIRST_OUTPUT_DELAY_MS, not at the next tick: readers see a step start promptly. */
  #firstOutputQueued = false;
  /** The budget cut this entry: everything after is dropped (a log has no gaps). */
  #truncated = false;
  readonly #losses: Losses = { truncatedBytes: 0, truncatedBy: '', refusedBytes: 0, refusedStatuses: new Set(), unsentBytes: 0 };
  #drained: { promise: Promise<void>; resolve: () => void } | undefined;
  // Append mode: the chunk being filled, full chunks not yet acknowledged (resent verbatim), and
  // acknowledged ones kept for reuse, so a flood reuses a few buffers instead of allocating per chunk.
  #filling: JsonChunk | undefined;
  #nextSeq = 0;
  readonly #chunks: PendingChunk[] = [];
  #chunkChars = 0;
  readonly #spare: JsonChunk[] = [];
  // Update mode: the whole output, its size, and what the coordinator holds.
  #out = '';
  #outBytes = 0;
  #sentOut: string | undefined;
  /** The coordinator refused an update: later output is not sent either. */
  #updatesRefused = false;

  constructor(options: StepLogOptions) {
    this.#options = options;
    this.#retry = { ...DEFAULT_LOG_RETRY, ...options.retry };
    this.key = options.key;
    this.#command = options.command.map((arg) => options.redactor.redactString(arg));
    this.#stdout = new OutputChannel(options.redactor, 'stdout: ');
    this.#stderr = new OutputChannel(options.redactor, 'stderr: ');
    this.#budget = options.budget ?? new LogBudget();
  }

  /** Adds the entry (without exitCode/durationMs) and starts the periodic flush. */
  start(): this {
    this.#startedAtMs = Date.now();
    this.#startTime = new Date(this.#startedAtMs).toISOString();
    this.#appendMode = this.#options.client.supports(EXTENSION_LOG_APPEND);
    this.#enqueue(async () => {
      try {
        this.#entryId = await this.#options.client.addExecutionLogEntry(this.#options.job, {
          key: this.key,
          command: this.#command,
          startTime: this.#startTime,
        });
      } catch (err) {
        this.#startError = err;
        this.#options.log?.warn({ err, key: this.key }, 'failed to add log entry');
        this.#discardPending();
      }
    });
    this.#timer = setInterval(() => {
      this.#remainderDue = true;
      this.#scheduleFlush();
    }, this.#options.flushIntervalMs ?? LOG_FLUSH_INTERVAL_MS);
    this.#timer.unref();
    return this;
  }

  /**
   * Feeds a stdout chunk of the step. A returned promise asks the caller to read no more output
   * until it settles (backpressure).
   */
  readonly onStdout = (chunk: Buffer): Promise<void> | undefined => this.#acceptAll(this.#stdout.push(chunk));
  /** Feeds a stderr chunk of the step; see onStdout. */
  readonly onStderr = (chunk: Buffer): Promise<void> | undefined => this.#acceptAll(this.#stderr.push(chunk));

  /** Adds a line written by the executor itself (unprefixed, as Sourcegraph's "Wrote <file>" lines). */
  writeLine(line: string): void {
    void this.#accept(`${escapeNul(this.#options.redactor.redactString(line))}\n`);
  }

  /** Log bytes of this entry that are not stored, by cause (past the budget, refused, or never accepted). */
  get lostBytes(): { truncated: number; refused: number; unsent: number } {
    const { truncatedBytes, refusedBytes, unsentBytes } = this.#losses;
    return { truncated: truncatedBytes, refused: refusedBytes, unsent: unsentBytes };
  }

  /**
   * Sends the rest of the output with `exitCode` and `durationMs`. Throws LogFlushError when the entry
   * could not be written; the job then fails, as in Sourcegraph.
   */
  async finish(exitCode: number): Promise<void> {
    if (this.#finished) return;
    this.#acceptAll([...this.#stdout.end(), ...this.#stderr.end()]);
    this.#finished = true;
    clearInterval(this.#timer);
    clearTimeout(this.#firstOutputTimer);
    const durationMs = Math.max(0, Math.round(Date.now() - this.#startedAtMs));
    let failure: unknown;
    this.#enqueue(async () => {
      try {
        await this.#flush({ exitCode, durationMs });
      } catch (err) {
        failure = err;
      }
    });
    await this.#chain;
    this.#releaseWriters();
    if (failure !== undefined) throw new LogFlushError(this.key, failure);
  }

  /** #accept for each piece of processed output; the pause promise, if any piece asked for one. */
  #acceptAll(pieces: readonly string[]): Promise<void> | undefined {
    let pause: Promise<void> | undefined;
    for (const piece of pieces) pause = this.#accept(piece) ?? pause;
    return pause;
  }

  /** Takes processed output in, within the budget; returns a promise when the caller should pause. */
  #accept(text: string): Promise<void> | undefined {
    if (text === '' || this.#finished) return undefined;
    if (this.#truncated) {
      this.#losses.truncatedBytes += Buffer.byteLength(text);
      return undefined;
    }
    const entryRoom = this.#appendMode ? Infinity : UPDATE_MODE_MAX_OUT_BYTES - this.#outBytes;
    const budgetBinds = this.#budget.remainingBytes <= entryRoom;
    const { kept, droppedBytes } = this.#budget.take(text, entryRoom);
    if (droppedBytes > 0) {
      this.#truncated = true;
      this.#losses.truncatedBytes += droppedBytes;
      this.#losses.truncatedBy = budgetBinds
        ? `the job's log limit of ${describeBytes(this.#budget.limitBytes)} (EXECUTOR_MAX_LOG_BYTES)`
        : `the limit of ${describeBytes(UPDATE_MODE_MAX_OUT_BYTES)} per log entry on instances without log-append`;
    }
    if (kept === '') return undefined;
    if (this.#startError !== undefined) {
      this.#losses.unsentBytes += Buffer.byteLength(kept);
      return undefined;
    }
    this.#endsWithNewline = kept.endsWith('\n');
    if (!this.#appendMode) {
      if (this.#updatesRefused) {
        this.#losses.refusedBytes += Buffer.byteLength(kept);
      } else {
        this.#out += kept;
        this.#outBytes += Buffer.byteLength(kept);
      }
      return undefined;
    }
    const sealed = this.#fill(kept);
    if (!this.#firstOutputQueued) {
      this.#firstOutputQueued = true;
      this.#firstOutputTimer = setTimeout(() => {
        this.#remainderDue = true;
        this.#scheduleFlush();
      }, FIRST_OUTPUT_DELAY_MS);
      this.#firstOutputTimer.unref();
      if (sealed) this.#scheduleFlush();
    } else if (sealed) this.#scheduleFlush();
    if (this.#pendingChars() <= BACKPRESSURE_HIGH_CHARS) return undefined;
    this.#drained ??= withResolvers();
    return this.#drained.promise;
  }

  /** Encodes `text` into chunks, sealing each that is full; true when one was sealed. */
  #fill(text: string): boolean {
    let sealed = false;
    let rest = text;
    for (;;) {
      this.#filling ??= this.#spare.pop() ?? new JsonChunk(CHUNK_BODY_BYTES);
      const taken = this.#filling.write(rest);
      if (taken === rest.length) return sealed;
      rest = rest.slice(taken);
      this.#seal();
      sealed = true;
    }
  }

  /** Queues the chunk being filled for sending, if it holds anything. */
  #seal(): void {
    const out = this.#filling;
    if (!out || out.isEmpty) return;
    this.#filling = undefined;
    this.#chunks.push({ seq: this.#nextSeq++, out });
    this.#chunkChars += out.chars;
  }

  #recycle(out: JsonChunk): void {
    if (out.capacity !== CHUNK_BODY_BYTES || this.#spare.length >= SPARE_CHUNKS) return;
    out.reset();
    this.#spare.push(out);
  }

  #pendingChars(): number {
    return (this.#filling?.chars ?? 0) + this.#chunkChars;
  }

  /** Lets paused writers go on once the backlog is small again, or for good once nothing will be sent. */
  #releaseWriters(): void {
    if (!this.#drained) return;
    if (this.#pendingChars() > BACKPRESSURE_LOW_CHARS && !this.#finished && this.#startError === undefined) return;
    this.#drained.resolve();
    this.#drained = undefined;
  }

  /** The entry does not exist: what waits can never be stored. */
  #discardPending(): void {
    this.#losses.unsentBytes += (this.#filling?.textBytes ?? 0) + Buffer.byteLength(this.#out);
    for (const chunk of this.#chunks.splice(0)) this.#losses.unsentBytes += chunk.out.textBytes;
    this.#filling = undefined;
    this.#chunkChars = 0;
    this.#spare.length = 0;
    this.#out = '';
    this.#outBytes = 0;
    this.#releaseWriters();
  }

  #enqueue(op: () => Promise<void>): void {
    this.#chain = this.#chain.then(op);
  }

  #scheduleFlush(): void {
    if (this.#flushQueued || this.#finished) return;
    this.#flushQueued = true;
    this.#enqueue(async () => {
      this.#flushQueued = false;
      try {
        await this.#flush();
      } catch (err) {
        // Not fatal: update mode keeps the output and sends it with the next flush.
        this.#options.log?.warn({ err, key: this.key }, 'failed to upload log output; will retry');
      }
    });
  }

  async #flush(final?: FinalFields): Promise<void> {
    if (this.#entryId === undefined) {
      if (final) throw this.#startError ?? new Error('the log entry was never created');
      return;
    }
    if (this.#appendMode) await this.#flushAppend(this.#entryId, final);
    else await this.#flushUpdate(this.#entryId, final);
  }

  async #flushAppend(entryId: number, final?: FinalFields): Promise<void> {
    if (final) {
      this.#seal();
      const tail = this.#chunks.at(-1);
      if (tail) Object.assign(tail, { final, withMarkers: true });
      else this.#chunks.push({ seq: this.#nextSeq++, out: emptyChunk(), final, withMarkers: true });
    }
    for (;;) {
      // Full chunks are sealed as output arrives; the timer also sends a partly filled one.
      if (this.#remainderDue) this.#seal();
      this.#remainderDue = false;
      const chunk = this.#chunks[0];
      if (!chunk) return;
      await this.#sendChunk(entryId, chunk);
      this.#chunks.shift();
      this.#chunkChars -= chunk.out.chars;
      this.#recycle(chunk.out);
      this.#releaseWriters();
    }
  }

  /** Sends one chunk; on a refusal or after every retry it is given up (and counted), never resent. */
  async #sendChunk(entryId: number, chunk: PendingChunk): Promise<void> {
    if (chunk.withMarkers) {
      chunk.outputBytes = chunk.out.textBytes;
      const before = chunk.out.chars;
      chunk.out.writeUnbounded(this.#markerLines());
      this.#chunkChars += chunk.out.chars - before;
      chunk.withMarkers = false;
    }
    const { client, job } = this.#options;
    const outcome = await this.#send('appendExecutionLog', () =>
      client.appendEncodedExecutionLog(job, { entryId, seq: chunk.seq, out: chunk.out, ...chunk.final }));
    if (outcome.ok) return;
    const bytes = chunk.outputBytes ?? chunk.out.textBytes;
    if (outcome.refused !== undefined) {
      this.#losses.refusedBytes += bytes;
      this.#losses.refusedStatuses.add(outcome.refused);
    } else {
      this.#losses.unsentBytes += bytes;
    }
    if (!chunk.final) return;
    // The exit code must still arrive: after a refusal, first with only the marker lines, then bare.
    if (outcome.refused === undefined || chunk.out.isEmpty) throw outcome.error;
    const retry: PendingChunk = chunk.markersOnly
      ? { seq: this.#nextSeq++, out: emptyChunk(), final: chunk.final }
      : { seq: this.#nextSeq++, out: emptyChunk(), final: chunk.final, withMarkers: true, markersOnly: true };
    this.#chunks.push(retry);
  }

  async #flushUpdate(entryId: number, final?: FinalFields): Promise<void> {
    if (!final && (this.#updatesRefused || this.#out === this.#sentOut)) return;
    const stored = this.#sentOut ?? '';
    const attempts = final
      ? [() => this.#out + this.#markerLines(), () => stored + this.#markerLines(), () => undefined]
      : [() => this.#out];
    for (const outOf of attempts) {
      const out = outOf();
      const outcome = await this.#send('updateExecutionLogEntry', () => this.#update(entryId, out, final));
      if (outcome.ok) {
        if (out !== undefined) this.#sentOut = out;
        return;
      }
      if (outcome.refused === undefined) throw outcome.error;
      if (out !== undefined && !this.#updatesRefused) {
        // What the coordinator did not take from this update, and every later byte, is missing.
        this.#updatesRefused = true;
        this.#losses.refusedBytes += Math.max(0, this.#outBytes - Buffer.byteLength(stored));
        this.#out = stored;
        this.#outBytes = Buffer.byteLength(stored);
      }
      this.#losses.refusedStatuses.add(outcome.refused);
      if (!final) return;
      if (out === undefined) throw outcome.error;
    }
  }

  #update(entryId: number, out: string | undefined, final?: FinalFields): Promise<void> {
    const entry: ExecutionLogEntry = {
      key: this.key,
      command: this.#command,
      startTime: this.#startTime,
      ...(out === undefined || out === '' ? {} : { out }),
      ...final,
    };
    return this.#options.client.updateExecutionLogEntry(this.#options.job, entryId, entry);
  }

  /** One request, retried with backoff unless the coordinator refused it. */
  async #send(operation: string, request: () => Promise<void>): Promise<SendOutcome> {
    const { attempts, baseDelayMs, maxDelayMs } = this.#retry;
    for (let attempt = 1; ; attempt++) {
      try {
        await request();
        return { ok: true };
      } catch (error) {
        const refused = refusedStatus(error);
        if (refused !== undefined) {
          this.#options.log?.warn({ err: error, key: this.key, operation, status: refused }, 'the coordinator refused log output; not resending it');
          return { ok: false, refused, error };
        }
        if (attempt >= attempts) {
          this.#options.log?.warn({ err: error, key: this.key, operation, attempts }, 'failed to upload log output; giving up on it');
          return { ok: false, refused: undefined, error };
        }
        this.#options.log?.debug({ err: error, key: this.key, operation, attempt }, 'failed to upload log output; retrying');
        await sleep(Math.min(baseDelayMs * 2 ** (attempt - 1), maxDelayMs));
      }
    }
  }

  /** Visible lines about output that is not stored; empty when nothing is missing. */
  #markerLines(): string {
    const { truncatedBytes, truncatedBy, refusedBytes, refusedStatuses, unsentBytes } = this.#losses;
    const lines: string[] = [];
    if (refusedBytes > 0) {
      lines.push(`[log incomplete: the coordinator refused ${describeBytes(refusedBytes)} of this output (HTTP ${[...refusedStatuses].join(', ')})]`);
    }
    if (unsentBytes > 0) lines.push(`[log incomplete: ${describeBytes(unsentBytes)} of this output could not be uploaded]`);
    if (truncatedBytes > 0) lines.push(`[log truncated: ${describeBytes(truncatedBytes)} of output dropped after reaching ${truncatedBy}]`);
    if (lines.length === 0) return '';
    const text = lines.map((line) => `${line}\n`).join('');
    return this.#endsWithNewline ? text : `\n${text}`;
  }
}

/** A chunk for the final call alone (the exit code, and marker lines if any). */
function emptyChunk(): JsonChunk {
  return new JsonChunk(0);
}

function withResolvers(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
