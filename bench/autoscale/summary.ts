/** One run's figures, and the table rows that compare a rule with the baseline. */
import { percentile } from '../support.js';
import type { SimulationResult } from './simulator.js';

export interface RunSummary {
  jobs: number;
  waitP50: number;
  waitP95: number;
  waitMax: number;
  instanceHours: number;
  peakInstances: number;
}

export function summarise(result: SimulationResult): RunSummary {
  const waits = [...result.waits].sort((a, b) => a - b);
  return {
    jobs: result.completions.filter((n) => n > 0).length,
    waitP50: percentile(waits, 50),
    waitP95: percentile(waits, 95),
    waitMax: waits.length > 0 ? waits[waits.length - 1]! : NaN,
    instanceHours: result.instanceHours,
    peakInstances: result.peakInstances,
  };
}

const COLUMNS: { title: string; value: (s: RunSummary) => number; format: (n: number) => string }[] = [
  { title: 'jobs', value: (s) => s.jobs, format: (n) => String(n) },
  { title: 'wait p50 s', value: (s) => s.waitP50, format: (n) => n.toFixed(0) },
  { title: 'wait p95 s', value: (s) => s.waitP95, format: (n) => n.toFixed(0) },
  { title: 'wait max s', value: (s) => s.waitMax, format: (n) => n.toFixed(0) },
  { title: 'instance-h', value: (s) => s.instanceHours, format: (n) => n.toFixed(1) },
  { title: 'peak inst', value: (s) => s.peakInstances, format: (n) => String(n) },
];

/** A ratio is undefined when the baseline is 0; both 0 is "the same" (1.00). */
function ratio(value: number, baseline: number): string {
  if (baseline === 0) return value === 0 ? '1.00' : '∞';
  return (value / baseline).toFixed(2);
}

export function tableRows(label: string, rows: { name: string; summary: RunSummary }[], baseline: RunSummary): string[][] {
  const out = rows.map((r) => [label, r.name, ...COLUMNS.map((c) => c.format(c.value(r.summary)))]);
  for (const r of rows.slice(1)) out.push([label, `${r.name} ÷ ${rows[0]!.name}`, ...COLUMNS.map((c) => ratio(c.value(r.summary), c.value(baseline)))]);
  return out;
}

export const TABLE_HEADER = ['cloud', 'rule', ...COLUMNS.map((c) => c.title)];

export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
