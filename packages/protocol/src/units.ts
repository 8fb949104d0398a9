/**
 * The one duration grammar and the one size grammar of Sandfleet's configuration, shared by the
 * executor and the coordinator.
 *
 * Durations are Go's `time.ParseDuration` syntax without a sign: one or more decimal numbers each with
 * a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), e.g. `300ms`, `25s`, `1m30s`, `2h`. A bare `0` is
 * allowed; any other bare number is refused, since it is unclear whether it meant seconds or ms.
 *
 * Sizes are a decimal number with an optional unit: bytes when bare (or `B`); `K`, `M`, `G`, `T`, `P`,
 * optionally followed by `i` and/or `B` (`KB`, `KiB`, ...), any case. Every multiple is a power of 1024
 * (`12G` = `12GB` = `12GiB` = 12 × 2^30 bytes), as Sourcegraph's executor reads its memory and disk sizes.
 */

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

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

const DURATION_HINT = 'use Go syntax such as 1s, 250ms, 30m, 1h30m';

/** Parses a duration into milliseconds, or says what is wrong with it. */
export function parseDuration(text: string): ParseResult<number> {
  const s = text.trim().replace(/^\+/, '');
  if (s === '0') return { ok: true, value: 0 };
  if (/^(\d+\.?\d*|\.\d+)$/.test(s)) {
    return { ok: false, error: `missing unit in duration ${JSON.stringify(text)} (add one, e.g. ${s}s or ${s}ms)` };
  }
  const invalid = { ok: false, error: `not a duration (${DURATION_HINT})` } as const;
  if (s === '') return invalid;
  const token = /(\d+\.?\d*|\.\d+)([a-zµμ]+)/y;
  let total = 0;
  while (token.lastIndex < s.length) {
    const m = token.exec(s);
    if (!m) return invalid;
    const factor = DURATION_UNITS_MS[m[2]!];
    if (factor === undefined) return invalid;
    total += Number(m[1]) * factor;
  }
  return { ok: true, value: total };
}

/** Parses a duration into milliseconds; undefined when the text is not one. */
export function parseDurationMs(text: string): number | undefined {
  const result = parseDuration(text);
  return result.ok ? result.value : undefined;
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

const SIZE_MULTIPLIERS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };
const SIZE = /^(\d+(?:\.\d+)?)\s*(?:([kmgtp])i?b?|b)?$/i;

/** Parses a size into whole bytes, or says what is wrong with it. */
export function parseSize(text: string): ParseResult<number> {
  const m = SIZE.exec(text.trim());
  const bytes = m ? Number(m[1]) * SIZE_MULTIPLIERS[(m[2] ?? '').toLowerCase()]! : NaN;
  if (!Number.isFinite(bytes)) return { ok: false, error: 'not a size (use e.g. 12G, 512M, 0)' };
  return { ok: true, value: Math.floor(bytes) };
}

/** Parses a size into bytes; undefined when the text is not one. */
export function parseSizeBytes(text: string): number | undefined {
  const result = parseSize(text);
  return result.ok ? result.value : undefined;
}
