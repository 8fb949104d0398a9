/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): the functions with the most self time, and the
 * share of time by package (where the time goes: pg, hono, pino, zod, our code, idle, GC).
 *   node --import tsx bench/cpu-profile.ts FILE.cpuprofile [--top=25]
 */
import fs from 'node:fs';
import { numberArg } from './support.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv.slice(2).find((a) => !a.startsWith('--'));
if (!file) throw new Error('usage: bench/cpu-profile.ts FILE.cpuprofile [--top=25]');
const TOP = numberArg('top', 25);
const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;

// Self time per node: each sample's delta goes to the node that was on top of the stack.
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

/** Where a frame's code lives: a package name, `sandfleet/<package>`, `node:<module>`, or V8's own. */
function origin(url: string, name: string): string {
  if (!url) return `(${name || 'native'})`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const own = /packages\/([^/]+)\//.exec(url);
  if (own) return `sandfleet/${own[1]}`;
  if (url.startsWith('node:')) return url;
  return url;
}

const functions = new Map<string, number>();
const origins = new Map<string, number>();
for (const [id, us] of selfUs) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  const where = origin(url, functionName);
  const key = `${functionName || '(anonymous)'}  ${where}${url ? `:${lineNumber + 1}` : ''}`;
  functions.set(key, (functions.get(key) ?? 0) + us);
  origins.set(where, (origins.get(where) ?? 0) + us);
}
const pct = (us: number) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled`);
console.log('\nself time by origin');
for (const [where, us] of [...origins].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${pct(us)}  ${where}`);
console.log('\ntop functions by self time');
for (const [key, us] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${pct(us)}  ${key}`);
