/**
 * Go-style durations ("30m", "1h30m", "250ms") and datasize-style sizes ("12G", "512M", "0"), the
 * notations Sourcegraph's executor configuration uses (reference §6).
 */

const DURATION_UNITS_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3,
  'μs': 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses a Go duration into milliseconds; undefined when the text is not one. Negative values are refused. */
export function parseDurationMs(text: string): number | undefined {
  const s = text.trim().replace(/^\+/, '');
  if (s === '0') return 0;
  if (s === '') return undefined;
  const token = /(\d+\.?\d*|\.\d+)([a-zµμ]+)/y;
  let total = 0;
  while (token.lastIndex < s.length) {
    const m = token.exec(s);
    if (!m) return undefined;
    const factor = DURATION_UNITS_MS[m[2]!];
    if (factor === undefined) return undefined;
    total += Number(m[1]) * factor;
  }
  return total;
}

/** Formats milliseconds the way Go's `time.Duration.String()` does: "30m0s", "1s", "250ms", "1h0m0s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const sign = ms < 0 ? '-' : '';
  const abs = Math.abs(ms);
  if (abs < 1) return `${sign}${trimNumber(abs * 1000)}µs`;
  if (abs < 1000) return `${sign}${trimNumber(abs)}ms`;
  const hours = Math.floor(abs / 3_600_000);
  const minutes = Math.floor((abs % 3_600_000) / 60_000);
  const seconds = (abs % 60_000) / 1000;
  let out = `${trimNumber(seconds)}s`;
  if (hours > 0 || minutes > 0) out = `${minutes}m${out}`;
  if (hours > 0) out = `${hours}h${out}`;
  return sign + out;
}

function trimNumber(n: number): string {
  return String(Number(n.toFixed(9)));
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/**
 * Parses a size such as "12G", "512MB", "1.5g", "64Ki" or "0" into bytes (1024-based, as the
 * datasize library Sourcegraph uses). Undefined when the text is not a size.
 */
export function parseSizeBytes(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)$/i.exec(text.trim());
  if (!m) return undefined;
  const [, num, unit, suffix] = m as unknown as [string, string, string, string];
  if (unit === '' && suffix.toLowerCase() === 'i') return undefined;
  const bytes = Number(num) * SIZE_UNITS[unit.toLowerCase()]!;
  return Number.isFinite(bytes) ? Math.floor(bytes) : undefined;
}
