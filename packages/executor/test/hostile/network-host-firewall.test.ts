/**
 * The host side of the job firewall (table `inet sandfleet_host`) must hold without a gap while
 * other jobs start, also when another executor process (re)installs it. A test namespace stands in
 * for the host; job A's router sends a stream of UDP datagrams to the host's address on its
 * uplink, which the host table drops, while job B's network starts with a fresh HostFirewall (as a
 * second executor process would) and the table is reinstalled several more times. No datagram may
 * arrive. At the end the table is removed and the same stream must arrive, so the probe is known
 * to see a gap when there is one.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, TEST_TAG, trackNetns } from '@sandfleet/test-helpers';
import { capture, runProcess } from '../../src/process/run.js';
import { inNetns } from '../../src/network/commands.js';
import { HOST_TABLE, HostFirewall } from '../../src/network/host-firewall.js';
import { createJobNetwork, type JobNetwork } from '../../src/network/job-network.js';
import { NamespaceUplink } from '../../src/network/uplink.js';

const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
const PORT = 9999;

const RECEIVER = `const d = require('node:dgram').createSocket('udp4');
d.on('message', (m) => process.stdout.write('got ' + m + '\\n'));
d.bind(${PORT}, '0.0.0.0', () => process.stdout.write('ready\\n'));`;

/** Sends one datagram every 2 ms to addr for ms milliseconds, then exits. */
const sender = (addr: string, ms: number) => `const d = require('node:dgram').createSocket('udp4');
const end = Date.now() + ${ms}; let n = 0;
const tick = () => { if (Date.now() > end) { d.close(); return; } d.send(String(n++), ${PORT}, '${addr}', () => setTimeout(tick, 2)); };
tick();`;

async function sh(argv: string[]): Promise<string> {
  const r = await capture(argv, { env: ENV });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe('host firewall: installed once, replaced atomically', () => {
  const host = `sft-host-${TEST_TAG}-${randomBytes(3).toString('hex')}`;
  const inHost = (argv: string[]) => inNetns(host, argv);
  let stateDir: string;
  let a: JobNetwork | undefined;
  let b: JobNetwork | undefined;
  const received: string[] = [];
  const receiver = new AbortController();
  let receiverExited: Promise<unknown> = Promise.resolve();

  before(async () => {
    stateDir = makeTempDir('sandfleet-hostfw-');
    trackNetns(host);
    await sh(['ip', 'netns', 'add', host]);
    await sh(['ip', '-n', host, 'link', 'set', 'lo', 'up']);
    let ready!: () => void;
    const started = new Promise<void>((r) => (ready = r));
    receiverExited = runProcess({
      argv: inHost([process.execPath, '-e', RECEIVER]),
      env: ENV,
      signal: receiver.signal,
      killGraceMs: 1000,
      onStdout: (c) => {
        const text = c.toString();
        if (text.includes('ready')) ready();
        received.push(...text.split('\n').filter((l) => l.startsWith('got ')));
      },
    });
    await started;
  });

  after(async () => {
    await a?.destroy();
    await b?.destroy();
    receiver.abort();
    await receiverExited.catch(() => {});
    await capture(['ip', 'netns', 'del', host], { env: ENV });
    await fs.rm(stateDir, { recursive: true, force: true });
  });

  it('job A stays blocked from the host while job B starts and the table is reinstalled', async () => {
    a = await createJobNetwork(`${TEST_TAG}-hfa`, 'public', new NamespaceUplink(host, [], [], new HostFirewall(inHost)), stateDir);
    const routerA = a.name.replace(/^sfj-/, 'sfr-');
    const gateway = /default via (\S+)/.exec(await sh(['ip', '-n', routerA, 'route', 'show', 'default']))?.[1];
    assert.ok(gateway, 'router A has a default route');
    assert.match(await sh(inHost(['nft', 'list', 'table', 'inet', HOST_TABLE])), /iifname "sfu\*" drop/);

    const stream = capture(inNetns(routerA, [process.execPath, '-e', sender(gateway, 4000)]), { env: ENV });
    // A second executor process starting job B installs the table with its own HostFirewall.
    b = await createJobNetwork(`${TEST_TAG}-hfb`, 'public', new NamespaceUplink(host, [], [], new HostFirewall(inHost)), stateDir);
    for (let i = 0; i < 15; i++) await new HostFirewall(inHost).install();
    const sent = await stream;
    assert.equal(sent.exitCode, 0, sent.stderr);
    assert.deepEqual(received, [], `datagrams from job A's router reached the host during B's start: ${received.length}`);
    // B's network is up and its router is blocked from the host as well.
    assert.match(await sh(['ip', '-n', b.name.replace(/^sfj-/, 'sfr-'), 'route', 'show', 'default']), /default via/);

    // Without the table the same stream arrives: the probe does see gaps.
    await sh(inHost(['nft', 'delete', 'table', 'inet', HOST_TABLE]));
    const open = await capture(inNetns(routerA, [process.execPath, '-e', sender(gateway, 300)]), { env: ENV });
    assert.equal(open.exitCode, 0, open.stderr);
    for (let i = 0; i < 50 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(received.length > 0, 'with no host table, datagrams must reach the receiver');
  });
});
