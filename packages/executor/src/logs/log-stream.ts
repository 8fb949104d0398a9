import { StringDecoder } from 'node:string_decoder';
import type { Logger } from 'pino';
import { SandfleetError, EXTENSION_LOG_APPEND, type ExecutionLogEntry } from '@sandfleet/protocol';
import type { CoordinatorClient, JobRef } from '../apiclient/client.js';
import type { Redactor, StreamRedactor } from './redaction.js';

/**
 * One execution log entry of a job (reference §3.4, §8 "Log entry lifecycle"): it is added when the
 * step starts, new output is sent at most every second, and a final call carries `exitCode` and
 * `durationMs`. Output is redacted before it is buffered, so no secret is ever held for sending.
 */

/** The client calls a log entry needs (a CoordinatorClient, or a fake in tests). */
export type LogClient = Pick<
  CoordinatorClient,
  'addExecutionLogEntry' | 'updateExecutionLogEntry' | 'appendExecutionLog' | 'supports'
>;

/** The entry could not be written completely; the job must not be reported as successful. */
export class LogFlushError extends SandfleetError {
  constructor(readonly key: string, cause: unknown) {
    super(`failed to upload log entry ${key}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Default time between two uploads of new output, in ms (Sourcegraph: 1s). */
export const LOG_FLUSH_INTERVAL_MS = 1_000;

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
  log?: Logger;
}

/**
 * Splits text into lines and prefixes each with `stdout: ` / `stderr: `. A partial line waits for its
 * newline (or the end of the stream), like Sourcegraph's line scanner.
 */
export class LinePrefixer {
  #partial = '';

  constructor(private readonly prefix: string) {}

  push(text: string): string {
    const combined = this.#partial + text;
    const lastNewline = combined.lastIndexOf('\n');
    if (lastNewline === -1) {
      this.#partial = combined;
      return '';
    }
    this.#partial = combined.slice(lastNewline + 1);
    return prefixLines(this.prefix, combined.slice(0, lastNewline));
  }

  end(): string {
    const rest = this.#partial;
    this.#partial = '';
    return rest === '' ? '' : prefixLines(this.prefix, rest);
  }
}

function prefixLines(prefix: string, text: string): string {
  return text.split('\n').map((line) => `${prefix}${line}\n`).join('');
}

/** bytes → text → redaction → prefixed lines, for one of stdout/stderr. */
class OutputChannel {
  readonly #decoder = new StringDecoder('utf8');
  readonly #redactor: StreamRedactor;
  readonly #lines: LinePrefixer;

  constructor(redactor: Redactor, prefix: string) {
    this.#redactor = redactor.stream();
    this.#lines = new LinePrefixer(prefix);
  }

  push(chunk: Buffer): string {
    return this.#lines.push(this.#redactor.push(this.#decoder.write(chunk)));
  }

  end(): string {
    const text = this.#redactor.push(this.#decoder.end()) + this.#redactor.end();
    return this.#lines.push(text) + this.#lines.end();
  }
}

interface PendingChunk {
  seq: number;
  out: string;
  exitCode?: number;
  durationMs?: number;
}

export class StepLog {
  readonly key: string;
  readonly #options: StepLogOptions;
  readonly #command: string[];
  readonly #stdout: OutputChannel;
  readonly #stderr: OutputChannel;
  /** Decided once at start: appending and replacing cannot be mixed within one entry. */
  #appendMode = false;
  #startTime = '';
  #startedAtMs = 0;
  #entryId: number | undefined;
  #startError: unknown;
  #chain: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #flushQueued = false;
  #finished = false;
  // Append mode: output not yet put in a chunk, and chunks not yet acknowledged (resent verbatim).
  #unsent = '';
  #nextSeq = 0;
  readonly #chunks: PendingChunk[] = [];
  // Update mode: the whole output, and its length at the last successful update.
  #out = '';
  #sentLength = -1;

  constructor(options: StepLogOptions) {
    this.#options = options;
    this.key = options.key;
    this.#command = options.command.map((arg) => options.redactor.redactString(arg));
    this.#stdout = new OutputChannel(options.redactor, 'stdout: ');
    this.#stderr = new OutputChannel(options.redactor, 'stderr: ');
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
      }
    });
    this.#timer = setInterval(() => this.#scheduleFlush(), this.#options.flushIntervalMs ?? LOG_FLUSH_INTERVAL_MS);
    this.#timer.unref();
    return this;
  }

  /** Feeds a stdout chunk of the step. */
  readonly onStdout = (chunk: Buffer): void => this.#append(this.#stdout.push(chunk));
  /** Feeds a stderr chunk of the step. */
  readonly onStderr = (chunk: Buffer): void => this.#append(this.#stderr.push(chunk));

  /** Adds a line written by the executor itself (unprefixed, as Sourcegraph's "Wrote <file>" lines). */
  writeLine(line: string): void {
    this.#append(`${this.#options.redactor.redactString(line)}\n`);
  }

  /**
   * Sends the rest of the output with `exitCode` and `durationMs`. Throws LogFlushError when the entry
   * could not be written; the job then fails, as in Sourcegraph.
   */
  async finish(exitCode: number): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    clearInterval(this.#timer);
    this.#append(this.#stdout.end() + this.#stderr.end());
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
    if (failure !== undefined) throw new LogFlushError(this.key, failure);
  }

  #append(text: string): void {
    if (text === '') return;
    if (this.#appendMode) this.#unsent += text;
    else this.#out += text;
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
        // Not fatal: the output stays queued and goes out with the next flush.
        this.#options.log?.warn({ err, key: this.key }, 'failed to upload log output; will retry');
      }
    });
  }

  async #flush(final?: { exitCode: number; durationMs: number }): Promise<void> {
    if (this.#entryId === undefined) {
      if (final) throw this.#startError ?? new Error('the log entry was never created');
      return;
    }
    const { client, job } = this.#options;
    if (this.#appendMode) {
      if (this.#unsent !== '' || final) {
        this.#chunks.push({ seq: this.#nextSeq++, out: this.#unsent, ...final });
        this.#unsent = '';
      }
      while (this.#chunks.length > 0) {
        const chunk = this.#chunks[0]!;
        await client.appendExecutionLog(job, { entryId: this.#entryId, ...chunk });
        this.#chunks.shift();
      }
      return;
    }
    if (!final && this.#out.length === this.#sentLength) return;
    const out = this.#out;
    const entry: ExecutionLogEntry = {
      key: this.key,
      command: this.#command,
      startTime: this.#startTime,
      ...(out === '' ? {} : { out }),
      ...final,
    };
    await client.updateExecutionLogEntry(job, this.#entryId, entry);
    this.#sentLength = out.length;
  }
}
