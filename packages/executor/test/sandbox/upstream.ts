/**
 * An "outside world" for network tests that lives entirely in a network namespace we create and
 * never connect to a real interface: job routers attach to it through NamespaceUplink. Its lo holds
 * the addresses a job must not reach (cloud metadata, private ranges, a "host" address) and one it
 * may (203.0.113.10, TEST-NET-3, standing in for the public internet). Every address has a TCP
 * server on port 80 ("hello from <addr>") and a UDP DNS server on port 53 answering every A query
 * with the public address; 10.53.0.53 is the resolver jobs are given.
 *
 * Probes use busybox applets that exist in the test image: `nc -w` for TCP and `nslookup <name>
 * <addr>` for UDP (Debian's static busybox has no `nc -u`, and its `wget -T` crashes).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeTempDir, TEST_TAG, trackNetns } from '@sandfleet/test-helpers';
import { capture, runProcess } from '../../src/process/run.js';
import { NamespaceUplink } from '../../src/network/uplink.js';

export const OUTSIDE = {
  metadata: '169.254.169.254',
  private10: '10.9.9.9',
  private172: '172.16.0.1',
  private192: '192.168.1.1',
  /** Stands for the executor host's own address: blocked although it is not in a private range. */
  host: '198.51.100.1',
  public: '203.0.113.10',
  dns: '10.53.0.53',
} as const;

const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

const SERVER = String.raw`
import net from 'node:net';
import dgram from 'node:dgram';
const [pub, ...addrs] = process.argv.slice(2);
let pending = addrs.length * 2;
const up = () => { if (--pending === 0) console.log('ready'); };
for (const a of addrs) {
  net.createServer((s) => { s.end('hello from ' + a + '\n'); s.on('error', () => {}); }).listen(80, a, up);
  // A DNS server on every address: the first question gets one A record (the public address).
  const d = dgram.createSocket('udp4');
  d.on('message', (q, r) => {
    let i = 12; while (i < q.length && q[i] !== 0) i += q[i] + 1; const qEnd = i + 5;
    const head = Buffer.from(q.subarray(0, 12)); head[2] = 0x81; head[3] = 0x80;
    head.writeUInt16BE(1, 6); head.writeUInt16BE(0, 8); head.writeUInt16BE(0, 10);
    const ans = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...pub.split('.').map(Number)]);
    d.send(Buffer.concat([head, q.subarray(12, qEnd), ans]), r.port, r.address);
  });
  d.bind(53, a, up);
}
`;

export interface TestUpstream {
  namespace: string;
  uplink: NamespaceUplink;
  stop(): Promise<void>;
}

export async function startUpstream(): Promise<TestUpstream> {
  const namespace = `sft-up-${TEST_TAG}-${randomBytes(3).toString('hex')}`;
  trackNetns(namespace);
  const dir = makeTempDir('sandfleet-upstream-');
  const run = async (argv: string[]) => {
    const r = await capture(argv, { env: ENV });
    if (r.exitCode !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  };
  await run(['ip', 'netns', 'add', namespace]);
  const controller = new AbortController();
  let exited: Promise<unknown> = Promise.resolve();
  try {
    await run(['ip', '-n', namespace, 'link', 'set', 'lo', 'up']);
    const addrs = Object.values(OUTSIDE);
    for (const a of addrs) await run(['ip', '-n', namespace, 'addr', 'add', `${a}/32`, 'dev', 'lo']);
    await fs.writeFile(path.join(dir, 'server.mjs'), SERVER);
    let ready!: () => void;
    const started = new Promise<void>((r) => (ready = r));
    exited = runProcess({
      argv: ['ip', 'netns', 'exec', namespace, process.execPath, path.join(dir, 'server.mjs'), OUTSIDE.public, ...addrs],
      env: ENV,
      signal: controller.signal,
      killGraceMs: 1000,
      onStdout: (c) => c.toString().includes('ready') && ready(),
      onStderr: (c) => process.stderr.write(c),
    });
    await Promise.race([started, exited.then(() => { throw new Error('upstream test servers exited'); })]);
  } catch (err) {
    controller.abort();
    await exited.catch(() => {});
    await capture(['ip', 'netns', 'del', namespace], { env: ENV });
    throw err;
  }
  return {
    namespace,
    uplink: new NamespaceUplink(namespace, [OUTSIDE.dns], [OUTSIDE.host]),
    async stop() {
      controller.abort();
      await exited.catch(() => {});
      await capture(['ip', 'netns', 'del', namespace], { env: ENV });
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

/** The outside addresses a job must not reach (everything but the public one and the resolver). */
export const BLOCKED = Object.values(OUTSIDE).filter((a) => a !== OUTSIDE.public && a !== OUTSIDE.dns);

/** Probes every address in parallel; each prints `<addr> tcp=<rc> udp=<rc> [icmp=<rc>]` plus output. */
export function blockedProbeScript(addrs: readonly string[], options: { icmp: boolean }): string {
  const one = (a: string) => `( o=$( (${tcp(a)}; echo "rc=$?") 2>&1 | tr '\\n' ' '); u=$( (${udp(a)}; echo "rc=$?") 2>&1 | tr '\\n' ' ');${options.icmp ? ` busybox ping -c 1 -W 1 ${a} >/dev/null 2>&1; i=$?;` : ' i=-;'} echo "${a} tcp[$o] udp[$u] icmp=$i" ) &`;
  return `${addrs.map(one).join('\n')}\nwait`;
}

export function assertAllBlocked(stdout: string, addrs: readonly string[], options: { icmp: boolean }): void {
  for (const a of addrs) {
    const line = stdout.split('\n').find((l) => l.startsWith(`${a} `));
    assert.ok(line, `no probe output for ${a}:\n${stdout}`);
    assert.doesNotMatch(line, /hello from|Address: 203/, `${a} must be unreachable: ${line}`);
    assert.match(line, /tcp\[.*(No route to host|Host is unreachable|can't connect).*rc=1 \]/, line);
    assert.match(line, /udp\[.*rc=1 \]/, line);
    if (options.icmp) assert.match(line, /icmp=1$/, line);
  }
}

/** TCP probe: prints "hello from <addr>" when it connects. */
export const tcp = (addr: string) => `busybox nc -w 3 ${addr} 80 </dev/null`;
/** UDP probe: a DNS query to <addr>:53; the test servers answer with 203.0.113.10. */
export const udp = (addr: string) => `busybox nslookup example.com ${addr}`;

