/**
 * The base of Sandfleet's typed errors. `name` is the subclass's own name, so logs and `err.name`
 * checks need no string per class. `retryable` says whether trying the same thing again later may
 * succeed (an unreachable peer) or cannot (a refused request, a bad configuration).
 */
export class SandfleetError extends Error {
  readonly retryable: boolean;

  constructor(message: string, options: ErrorOptions & { retryable?: boolean } = {}) {
    const { retryable = false, ...errorOptions } = options;
    super(message, errorOptions);
    this.name = new.target.name;
    this.retryable = retryable;
  }
}

/**
 * Why a running job was stopped: the user canceled it, the instance no longer knows it, it ran past
 * its maximum runtime, or the executor is shutting down.
 */
export type CancelReason = 'user' | 'lost' | 'timeout' | 'shutdown';
