/**
 * A resolver that sits in a blocked range (here: at the cloud metadata address itself) is reachable
 * for DNS only — UDP and TCP port 53 — and for nothing else; an address that is not one of the
 * job's resolvers gets no DNS exception at all. Everything lives in test namespaces.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, TEST_TAG } from '@sandfleet/test-helpers';
import fs from 'node:fs/promises';
import { capture } from '../../src/process/run.js';
import { createJobNetwork, type JobNetwork } from '../../src/network/job-network.js';
import { NamespaceUplink } from '../../src/network/uplink.js';
import { OUTSIDE, startUpstream, tcp, udp, type TestUpstream } from '../sandbox/upstream.js';

const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

async function inJob(net: JobNetwork, script: string) {
  return capture(['ip', 'netns', 'exec', net.name, 'busybox', 'sh', '-c', script], { env: ENV, signal: AbortSignal.timeout(30_000) });
}

describe('DNS to a resolver in a blocked range', () => {
  let upstream: TestUpstream;
  let stateDir: string;
  let metadataResolver: JobNetwork;
  let usual: JobNetwork;

  before(async () => {
    upstream = await startUpstream();
    stateDir = makeTempDir('sandfleet-dns-');
    [metadataResolver, usual] = await Promise.all([
      createJobNetwork(`${TEST_TAG}-dnsm`, 'public', new NamespaceUplink(upstream.namespace, [OUTSIDE.metadata], [OUTSIDE.host]), stateDir),
      createJobNetwork(`${TEST_TAG}-dnsu`, 'public', upstream.uplink, stateDir),
    ]);
  });
  after(async () => {
    await metadataResolver?.destroy();
    await usual?.destroy();
    await upstream?.stop();
    await fs.rm(stateDir, { recursive: true, force: true });
  });

  it('answers DNS on udp and tcp 53 and refuses every other port and protocol', async () => {
    assert.equal(metadataResolver.resolvConf, `nameserver ${OUTSIDE.metadata}\n`);
    const dns = await inJob(metadataResolver, `${udp(OUTSIDE.metadata)} 2>&1`);
    assert.match(dns.stdout, /Server:\s+169\.254\.169\.254[\s\S]*Address: 203\.0\.113\.10/, dns.stdout);
    // TCP 53 is let through: the test upstream has no TCP DNS server, so its own stack resets the
    // connection ("Connection refused"), where the router's rejection says "No route to host".
    const tcp53 = await inJob(metadataResolver, `busybox nc -w 3 ${OUTSIDE.metadata} 53 </dev/null 2>&1; echo rc=$?`);
    assert.match(tcp53.stdout, /Connection refused/, tcp53.stdout);
    const other = await inJob(metadataResolver, `${tcp(OUTSIDE.metadata)} 2>&1; echo rc=$?; busybox nc -w 3 ${OUTSIDE.metadata} 5353 </dev/null 2>&1; echo rc=$?; busybox ping -c 1 -W 2 ${OUTSIDE.metadata} >/dev/null 2>&1; echo ping=$?`);
    assert.doesNotMatch(other.stdout, /hello from/, other.stdout);
    assert.equal(other.stdout.match(/No route to host|Host is unreachable/g)?.length, 2, other.stdout);
    assert.match(other.stdout, /ping=1/, other.stdout);
    // The other resolvers in blocked ranges stay blocked for this job, DNS included.
    const notMine = await inJob(metadataResolver, `${udp(OUTSIDE.dns)} 2>&1; echo rc=$?`);
    assert.doesNotMatch(notMine.stdout, /Address: 203\.0\.113\.10/, notMine.stdout);
  });

  it('gives a job whose resolver is elsewhere no DNS exception for the metadata address', async () => {
    const r = await inJob(usual, `${udp(OUTSIDE.metadata)} 2>&1; echo rc=$?; ${udp(OUTSIDE.dns)} 2>&1`);
    assert.match(r.stdout, /rc=1/, r.stdout);
    assert.match(r.stdout, /Server:\s+10\.53\.0\.53[\s\S]*Address: 203\.0\.113\.10/, r.stdout);
    // The upstream (standing in for the outside world) still serves the other job.
    const pub = await inJob(usual, `${tcp(OUTSIDE.public)}`);
    assert.match(pub.stdout, /hello from 203\.0\.113\.10/);
  });
});
