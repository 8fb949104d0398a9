import fs from 'node:fs';
import { inNetns, must, tryRun } from './commands.js';
import { HostFirewall } from './host-firewall.js';

/**
 * Where a job's router namespace sends the traffic it allows. Production uses the host's default
 * route (HostUplink); tests connect routers to an upstream test namespace (NamespaceUplink) so no
 * packet can reach a real interface even if a firewall rule failed to load.
 */
export interface Uplink {
  /** Resolvers jobs may use; they are written to the job's /etc/resolv.conf. */
  readonly dnsServers: readonly string[];
  /** Addresses of the host itself, blocked for jobs like the private ranges. */
  hostAddresses(): Promise<string[]>;
  /**
   * Creates `up0` in `routerNs`, addresses it from `slot`'s /30 and gives the router a default
   * route over it.
   */
  attach(routerNs: string, slot: number): Promise<void>;
  detach(slot: number): Promise<void>;
}

/** Slot n owns 100.80.0.0/16's n-th /30: .1 outside (uplink side), .2 in the router. */
export function slotAddresses(slot: number): { outside: string; router: string } {
  const base = (100 << 24) + (80 << 16) + slot * 4;
  const ip = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  return { outside: ip(base + 1), router: ip(base + 2) };
}
export const MAX_SLOTS = 16_384;
export const TRANSIT_RANGE = '100.80.0.0/16';

async function attachVeth(routerNs: string, slot: number, peerNetns: string, peerName: string, peerExec: (argv: string[]) => string[]) {
  const { outside, router } = slotAddresses(slot);
  await must(['ip', '-n', routerNs, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', peerName, 'netns', peerNetns]);
  await must(peerExec(['ip', 'addr', 'add', `${outside}/30`, 'dev', peerName]));
  await must(peerExec(['ip', 'link', 'set', peerName, 'up']));
  await must(['ip', '-n', routerNs, 'addr', 'add', `${router}/30`, 'dev', 'up0']);
  await must(['ip', '-n', routerNs, 'link', 'set', 'up0', 'up']);
  await must(['ip', '-n', routerNs, 'route', 'add', 'default', 'via', outside, 'dev', 'up0']);
}

/**
 * Connects job routers to an existing named namespace (a test upstream, or a dedicated egress
 * namespace). The routers masquerade, so the upstream needs no routes back.
 */
export class NamespaceUplink implements Uplink {
  /**
   * `hostFirewall`: install HostUplink's host table in the namespace too, for a namespace that
   * stands in for the host (or holds other things routers must not reach).
   */
  constructor(readonly namespace: string, readonly dnsServers: readonly string[] = [], private readonly blockedHostAddresses: readonly string[] = [], private readonly hostFirewall?: HostFirewall) {}

  async hostAddresses(): Promise<string[]> {
    return [...this.blockedHostAddresses];
  }

  async attach(routerNs: string, slot: number): Promise<void> {
    await this.hostFirewall?.ensure();
    await attachVeth(routerNs, slot, this.namespace, `sfu${slot}`, (argv) => inNetns(this.namespace, argv));
  }

  async detach(slot: number): Promise<void> {
    await tryRun(inNetns(this.namespace, ['ip', 'link', 'del', `sfu${slot}`]));
  }
}

/**
 * Production uplink: a veth into the host's own network namespace, IPv4 forwarding on, and a
 * masquerade rule for the transit range out of whatever interface carries the default route. The
 * host keeps its own firewall; ours only adds table `inet sandfleet_host` (HostFirewall), once,
 * which masquerades job traffic and drops anything a router sends to the host itself or that
 * arrives unasked for a job.
 * An accept in our table cannot override a DROP policy in another table (Docker's FORWARD chain):
 * on such hosts the operator must also allow `sfu*` there.
 *
 * Tests must never take this path: it refuses to run under the node test runner, and it assumes it
 * is under one unless the executor's configuration (which reads NODE_TEST_CONTEXT) says otherwise.
 */
export class HostUplink implements Uplink {
  readonly dnsServers: readonly string[];
  private readonly firewall = new HostFirewall();

  constructor(dnsServers?: readonly string[], private readonly underTestRunner = true) {
    this.dnsServers = dnsServers ?? hostResolvers();
  }

  async hostAddresses(): Promise<string[]> {
    const out = await must(['ip', '-j', '-4', 'addr', 'show']);
    const links = JSON.parse(out) as { addr_info?: { local?: string }[] }[];
    return links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local).filter((a): a is string => !!a));
  }

  async attach(routerNs: string, slot: number): Promise<void> {
    if (this.underTestRunner) {
      throw new Error('refusing to wire a job network to the host\'s real interfaces under the test runner; inject a test uplink');
    }
    await this.firewall.ensure();
    await attachVeth(routerNs, slot, String(process.pid), `sfu${slot}`, (argv) => argv);
  }

  async detach(slot: number): Promise<void> {
    await tryRun(['ip', 'link', 'del', `sfu${slot}`]);
  }
}

/** Non-loopback nameservers of the host (a loopback stub resolver cannot serve jobs). */
export function hostResolvers(file = '/etc/resolv.conf'): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n')
      .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
      .filter((a): a is string => !!a && !a.startsWith('127.') && a !== '::1');
  } catch {
    return [];
  }
}
