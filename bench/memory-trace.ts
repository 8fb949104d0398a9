/**
 * Preloaded into a process under measurement (`node --import tsx --import ./bench/memory-trace.ts ...`):
 * every MEMORY_TRACE_MS (default 100) it appends one JSON line of `process.memoryUsage()` and the
 * size of each V8 heap space to the file MEMORY_TRACE_FILE, and one line per garbage collection, so
 * a bench can say which kind of memory a peak was made of and when the collector ran.
 */
import fs from 'node:fs';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import v8 from 'node:v8';

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

const file = process.env.MEMORY_TRACE_FILE;
if (file) {
  const fd = fs.openSync(file, 'a', 0o600);
  const started = performance.now();
  const write = (record: object) => fs.writeSync(fd, `${JSON.stringify({ ms: Math.round(performance.now() - started), ...record })}\n`);
  const sample = () => {
    const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
    const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
    write({ rss, heapTotal, heapUsed, external, arrayBuffers, spaces });
  };
  setInterval(sample, Number(process.env.MEMORY_TRACE_MS ?? 100)).unref();
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind ?? -1;
      write({ gc: GC_KINDS[kind] ?? String(kind), durationMs: Number(entry.duration.toFixed(1)) });
    }
  }).observe({ entryTypes: ['gc'] });
}
