import type { QueueSettings } from '../queue-catalog.js';

const DEQUEUE_HISTORY_TTL_MS = 5 * 60_000;

/**
 * Chooses which queue a multi-queue dequeue serves (docs/protocol.md, "Dequeue"): among non-empty
 * queues, drop those that reached their recent-dequeue limit (unless all did), then pick at random
 * weighted by queue weight. Sourcegraph keeps the history in Redis; one coordinator keeps it here.
 */
export class QueuePicker {
  private readonly history = new Map<string, number[]>();

  constructor(private readonly settings: Readonly<Record<string, QueueSettings>>, private readonly random: () => number = Math.random) {}

  pick(nonEmptyQueues: readonly string[], now = Date.now()): string | undefined {
    if (nonEmptyQueues.length <= 1) return nonEmptyQueues[0];
    const underLimit = nonEmptyQueues.filter((q) => this.recentCount(q, now) < (this.settings[q]?.dequeueLimit ?? Infinity));
    const candidates = underLimit.length > 0 ? underLimit : [...nonEmptyQueues];
    if (candidates.length === 1) return candidates[0];
    const weights = candidates.map((q) => this.settings[q]?.weight ?? 1);
    let point = this.random() * weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < candidates.length; i++) {
      point -= weights[i]!;
      if (point < 0) return candidates[i];
    }
    return candidates[candidates.length - 1];
  }

  recordDequeue(queue: string, now = Date.now()): void {
    const list = this.history.get(queue) ?? [];
    list.push(now);
    this.history.set(queue, list);
  }

  private recentCount(queue: string, now: number): number {
    const list = (this.history.get(queue) ?? []).filter((t) => now - t < DEQUEUE_HISTORY_TTL_MS);
    this.history.set(queue, list);
    return list.length;
  }
}
