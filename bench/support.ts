/** What the benches share beyond @sandfleet/test-helpers: argument parsing and percentiles. */
import type { BackendName } from '@sandfleet/db';

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export function backendsFromArgs(): BackendName[] {
  const arg = process.argv.find((a) => a.startsWith('--backends='));
  return (arg ? arg.slice('--backends='.length) : 'postgres,pglite').split(',') as BackendName[];
}
