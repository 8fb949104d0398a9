import { utf8Prefix } from './log-text.js';

/** EXECUTOR_MAX_LOG_BYTES's default: the log text one job may store, 100 MiB. */
export const DEFAULT_MAX_LOG_BYTES = 100 * 1024 * 1024;

/** What `take` kept of a piece of log text and how many UTF-8 bytes it dropped. */
export interface BudgetTake {
  kept: string;
  droppedBytes: number;
}

/**
 * The log bytes (UTF-8, as stored) one job may still send, shared by all its log entries. Output past
 * it is dropped (from the first cut on, all of it), and each entry that dropped some says how much in
 * a marker line; those marker lines
 * are not counted, so the stored log can exceed the limit by a few lines.
 */
export class LogBudget {
  #remaining: number;

  constructor(readonly limitBytes: number = DEFAULT_MAX_LOG_BYTES) {
    this.#remaining = limitBytes;
  }

  get remainingBytes(): number {
    return this.#remaining;
  }

  /** Keeps as much of `text` as fits in this budget and in `otherLimitBytes`, and charges it. */
  take(text: string, otherLimitBytes = Infinity): BudgetTake {
    const allowed = Math.min(this.#remaining, otherLimitBytes);
    const bytes = Buffer.byteLength(text);
    if (bytes <= allowed) {
      this.#remaining -= bytes;
      return { kept: text, droppedBytes: 0 };
    }
    const kept = utf8Prefix(text, allowed);
    const keptBytes = Buffer.byteLength(kept);
    // Once the job's budget cut something, nothing later may slip into the leftover: a log has no gaps.
    this.#remaining = this.#remaining <= otherLimitBytes ? 0 : this.#remaining - keptBytes;
    return { kept, droppedBytes: bytes - keptBytes };
  }
}

/** Bytes as the marker lines show them: exact, with a readable size for large counts. */
export function describeBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${bytes} bytes`;
  return `${bytes} bytes (${(bytes / (1024 * 1024)).toFixed(1)} MiB)`;
}
