import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { NetworkPolicy } from './policy.js';
import { inNetns, must, tryRun } from './commands.js';
import { routerRuleset } from './firewall.js';
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
  destroy(): Promise<void>;
}

const JOB_ADDR = '100.96.0.2';
const ROUTER_ADDR = '100.96.0.1';

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
    let resolvConf = '';
    if (policy === 'public') {
      if (!uplink) throw new Error('network policy "public" needs an uplink');
      slot = await claimSlot(slotsDir, key);
      routed = true;
      await must(['ip', 'netns', 'add', routerNs]);
      await must(['ip', '-n', routerNs, 'link', 'set', 'lo', 'up']);
      // The firewall goes in before any interface exists, so no packet ever passes unfiltered.
      await must(inNetns(routerNs, ['nft', '-f', '-']), routerRuleset({ dnsServers: [...uplink.dnsServers], extraBlocked: await uplink.hostAddresses() }));
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
      resolvConf = uplink.dnsServers.map((s) => `nameserver ${s}\n`).join('');
    }
    return { netnsPath: `/run/netns/${jobNs}`, name: jobNs, resolvConf, destroy: cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Claims a free uplink slot by creating its file exclusively (safe across executor processes). */
async function claimSlot(dir: string, key: string): Promise<number> {
  await fs.mkdir(dir, { recursive: true });
  const start = randomBytes(2).readUInt16BE(0) % MAX_SLOTS;
  for (let i = 0; i < MAX_SLOTS; i++) {
    const slot = (start + i) % MAX_SLOTS;
    try {
      await fs.writeFile(path.join(dir, String(slot)), key, { flag: 'wx' });
      return slot;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  throw new Error('no free network slot for the job');
}
