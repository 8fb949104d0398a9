import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { SandfleetError } from '@sandfleet/protocol';
import type { NetworkPolicy } from './policy.js';
import { inNetns, must, tryRun } from './commands.js';
import { routerRuleset } from './firewall.js';
import { claimSlotFile } from '../process/slot-claims.js';
import { MAX_SLOTS, type Uplink } from './uplink.js';

/**
 * A job's network: its own namespace `sfj-<key>` holding only `lo` and, for the `public` policy,
 * `eth0` — a veth to a per-job router namespace `sfr-<key>` where the egress firewall lives and
 * which reaches the outside through an Uplink:
 *
 *   job ns [eth0 100.96.0.2] ⇄ [j0 100.96.0.1] router ns (nft) [up0 slot/30] ⇄ uplink (host or test)
 *
 * Every job has the same inner addresses (they are in different namespaces), so jobs cannot even
 * name each other; the routers' uplink addresses are in 100.80/16, which the firewall blocks.
 */
export interface JobNetwork {
  /** `/run/netns/sfj-<key>`: bundles and nsenter join this. */
  readonly netnsPath: string;
  readonly name: string;
  /** Contents for the job's /etc/resolv.conf. */
  readonly resolvConf: string;
  readonly policy: NetworkPolicy;
  /** The resolvers in resolvConf (none for the `none` policy). */
  readonly dnsServers: readonly string[];
  /** What to remove if the owner dies before `destroy`: see removeJobNetworkRecord. */
  readonly record: JobNetworkRecord;
  destroy(): Promise<void>;
}

/**
 * The job's side of the job↔router link, the same in every job: `eth0`'s address, its prefix
 * length and the router (the default gateway). A microVM's guest takes this address instead.
 */
export const JOB_LINK = { address: '100.96.0.2', prefixLength: 30, gateway: '100.96.0.1' } as const;
const JOB_ADDR = JOB_LINK.address;
const ROUTER_ADDR = JOB_LINK.gateway;

/** The names a job network is made of, enough to remove it when its owner died (a janitor's job). */
export interface JobNetworkRecord {
  namespaces: string[];
  /** The uplink slot claim, when the job had one. */
  slotFile?: string;
}

const RECORD_NAMESPACE = /^sf[jr]-[a-z0-9-]{1,40}$/;

export class JobNetworkRecordError extends SandfleetError {}

/** Checks a record read back from disk before it is used to delete anything. */
export function parseJobNetworkRecord(text: string): JobNetworkRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new JobNetworkRecordError('the job network record is not JSON');
  }
  const r = value as Partial<JobNetworkRecord> | null;
  const namespaces = r?.namespaces;
  if (!Array.isArray(namespaces) || namespaces.length > 2 || !namespaces.every((n) => typeof n === 'string' && RECORD_NAMESPACE.test(n))) {
    throw new JobNetworkRecordError('the job network record names no valid sfj-/sfr- namespaces');
  }
  const slotFile = r?.slotFile;
  if (slotFile !== undefined && (typeof slotFile !== 'string' || !path.isAbsolute(slotFile) || !/\/network\/slots\/\d{1,5}$/.test(slotFile))) {
    throw new JobNetworkRecordError('the job network record\'s slot file is not a network slot');
  }
  return { namespaces, ...(slotFile === undefined ? {} : { slotFile }) };
}

/**
 * Removes a job network whose owner is gone: the links in its namespaces (a veth's peer — the
 * uplink's `sfu<slot>` — goes with it), then the namespaces, then its slot claim. The kernel frees
 * a deleted namespace's devices later, in the background, so the links are deleted one by one
 * first: once this returns, the slot's addresses are free to be claimed again.
 */
export async function removeJobNetworkRecord(record: JobNetworkRecord): Promise<void> {
  for (const ns of record.namespaces) {
    for (const link of await linksIn(ns)) await tryRun(['ip', '-n', ns, 'link', 'del', link]);
    await tryRun(['ip', 'netns', 'del', ns]);
  }
  if (record.slotFile) await fs.rm(record.slotFile, { force: true });
}

async function linksIn(ns: string): Promise<string[]> {
  try {
    const links = JSON.parse(await must(['ip', '-n', ns, '-j', 'link', 'show'])) as { ifname?: string }[];
    return links.map((l) => l.ifname).filter((n): n is string => !!n && n !== 'lo');
  } catch {
    return [];
  }
}

/**
 * `adoptPid`: instead of making a fresh namespace, name and wire the network namespace of that
 * process (the docker runtime's holder container, since Docker cannot join a namespace by path).
 */
export async function createJobNetwork(key: string, policy: NetworkPolicy, uplink: Uplink | undefined, stateDir: string, adoptPid?: number): Promise<JobNetwork> {
  const jobNs = `sfj-${key}`;
  const routerNs = `sfr-${key}`;
  let slot: number | undefined;
  let routed = false;
  const slotsDir = path.join(stateDir, 'network', 'slots');
  const cleanup = async () => {
    await tryRun(['ip', 'netns', 'del', jobNs]);
    if (routed) await tryRun(['ip', 'netns', 'del', routerNs]);
    if (slot !== undefined) {
      await uplink?.detach(slot);
      await fs.rm(path.join(slotsDir, String(slot)), { force: true });
    }
  };
  try {
    // One shell for both: each process the executor spawns costs a fork of itself.
    const create = adoptPid === undefined ? 'ip netns add "$1"' : 'ip netns attach "$1" "$2"';
    await must(['/bin/sh', '-c', `${create} && ip -n "$1" link set lo up`, 'sh', jobNs, ...(adoptPid === undefined ? [] : [String(adoptPid)])]);
    let dnsServers: string[] = [];
    if (policy === 'public') {
      if (!uplink) throw new Error('network policy "public" needs an uplink');
      slot = await claimSlot(slotsDir, key);
      routed = true;
      await must(['ip', 'netns', 'add', routerNs]);
      await must(['ip', '-n', routerNs, 'link', 'set', 'lo', 'up']);
      // The firewall goes in before any interface exists, so no packet ever passes unfiltered.
      await must(inNetns(routerNs, ['nft', '-f', '-']), routerRuleset({ dnsServers: [...uplink.dnsServers], extraBlocked: await uplink.hostAddresses(), jobAddress: JOB_ADDR }));
      // Rejections answer with ICMP; without this the kernel rate-limits them per job and a job
      // probing several blocked addresses at once sees timeouts instead of fast failures.
      await must(inNetns(routerNs, ['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.icmp_ratelimit=0']));
      await must(inNetns(jobNs, ['sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']));
      await must(['ip', '-n', routerNs, 'link', 'add', 'j0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', jobNs]);
      await must(['ip', '-n', routerNs, 'addr', 'add', `${ROUTER_ADDR}/30`, 'dev', 'j0']);
      await must(['ip', '-n', routerNs, 'link', 'set', 'j0', 'up']);
      await must(['ip', '-n', jobNs, 'addr', 'add', `${JOB_ADDR}/30`, 'dev', 'eth0']);
      await must(['ip', '-n', jobNs, 'link', 'set', 'eth0', 'up']);
      await must(['ip', '-n', jobNs, 'route', 'add', 'default', 'via', ROUTER_ADDR]);
      await uplink.attach(routerNs, slot);
      dnsServers = [...uplink.dnsServers];
    }
    const record: JobNetworkRecord = policy === 'public'
      ? { namespaces: [jobNs, routerNs], slotFile: path.join(slotsDir, String(slot)) }
      : { namespaces: [jobNs] };
    const resolvConf = dnsServers.map((s) => `nameserver ${s}\n`).join('');
    return { netnsPath: `/run/netns/${jobNs}`, name: jobNs, policy, resolvConf, dnsServers, record, destroy: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Claims a free uplink slot (safe across executor processes), from a random start. */
async function claimSlot(dir: string, key: string): Promise<number> {
  const slot = claimSlotFile(dir, key, MAX_SLOTS, randomBytes(2).readUInt16BE(0) % MAX_SLOTS);
  if (slot === undefined) throw new Error('no free network slot for the job');
  return slot;
}
