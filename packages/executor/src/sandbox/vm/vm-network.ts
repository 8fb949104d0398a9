import net from 'node:net';
import { SandfleetError } from '@sandfleet/protocol';
import { must, tryRun } from '../../network/commands.js';
import { JOB_LINK, type JobNetwork, type JobNetworkRecord } from '../../network/job-network.js';

/**
 * A microVM's network. The guest takes the place `eth0` has for every other runtime:
 *
 *   guest [eth0 100.96.0.2] ⇄ tap0 ─ br0 ─ eth0 (veth, no address) ⇄ [j0 100.96.0.1] router ns (nft) ⇄ uplink
 *   └──────── QEMU, run inside the job namespace ────────┘
 *
 * Inside the job namespace, eth0 loses its address and becomes a bridge port next to tap0, which
 * QEMU opens. The guest holds the job's address and routes via the router, so each of its packets
 * enters the router on `j0` like a container's, and the router's ruleset stays the one egress
 * policy: the rules match the interface and destination, so addresses the guest's root picks for
 * itself change nothing. The job namespace keeps no address of its own; it is a wire. QEMU runs in
 * it (nsenter) to open tap0 by name, so even a QEMU the guest took over reaches nothing but the
 * router. With policy `none` QEMU still runs there, with no NIC, in a namespace holding only `lo`.
 */
export class VmNetworkError extends SandfleetError {}

/** What QemuVm needs to give a guest its network; made by attachVmNetwork. */
export interface VmNetwork {
  /** Replaces `-nic none`. */
  qemuArgs: string[];
  /** Appended to the guest kernel's command line; the guest's init reads them. */
  kernelArgs: string[];
  /** Prepended to QEMU's argv: enters the job's network namespace. */
  spawnPrefix: string[];
  /** The job's network namespace, for a VMM that enters it itself (the jailer's --netns). */
  netnsPath: string;
  /** The tap in that namespace and the MAC the guest's NIC gets; undefined with policy `none`. */
  tap?: { name: string; mac: string };
  /** What the VM janitor removes when the VM's owner died. */
  record: JobNetworkRecord;
  /** Removes the tap and the bridge; the JobNetwork itself is destroyed by its owner, after the VM. */
  destroy(): Promise<void>;
}

export const TAP_NAME = 'tap0';
const BRIDGE_NAME = 'br0';
/** Every guest has the same MAC: each is alone on its own bridge, like the job addresses. */
export const GUEST_MAC = '52:54:00:5f:00:02';
const NIC_DEVICE_ARGS = ['-device', `virtio-net-device,netdev=net0,mac=${GUEST_MAC}`];
/**
 * The same NIC on a hub port that leads nowhere: a guest saved for warm starts is booted with it,
 * so its state fits a job VM whose NIC is on the job's tap (migration carries the device, not
 * the host side), while the saving VM itself has no network at all.
 */
export const DETACHED_NIC_ARGS = ['-netdev', 'hubport,id=net0,hubid=0', ...NIC_DEVICE_ARGS];
/** resolv(5) reads at most three nameservers. */
const MAX_GUEST_RESOLVERS = 3;

/** The guest init's network settings: `sandfleet.ip=<addr>/<len> sandfleet.gw=<addr> sandfleet.dns=<a>[,<b>…]`. */
export function guestKernelArgs(dnsServers: readonly string[]): string[] {
  // The router accepts only IPv4 DNS (IPv6 is rejected outright), so IPv6 resolvers would only time out.
  const dns = dnsServers.filter((s) => net.isIPv4(s)).slice(0, MAX_GUEST_RESOLVERS);
  return [
    `sandfleet.ip=${JOB_LINK.address}/${JOB_LINK.prefixLength}`,
    `sandfleet.gw=${JOB_LINK.gateway}`,
    ...(dns.length ? [`sandfleet.dns=${dns.join(',')}`] : []),
  ];
}

function enterNetns(network: JobNetwork): string[] {
  return ['nsenter', `--net=${network.netnsPath}`, '--'];
}

/** Wires a tap for one VM into `network` (made by createJobNetwork for this job, unused by anything else). */
export async function attachVmNetwork(network: JobNetwork): Promise<VmNetwork> {
  if (network.policy === 'none') {
    return { qemuArgs: ['-nic', 'none'], kernelArgs: [], spawnPrefix: enterNetns(network), netnsPath: network.netnsPath, record: network.record, destroy: async () => {} };
  }
  const ns = network.name;
  const destroy = async () => {
    await tryRun(['ip', '-n', ns, 'link', 'del', TAP_NAME]);
    await tryRun(['ip', '-n', ns, 'link', 'del', BRIDGE_NAME]);
  };
  try {
    await must(['ip', '-n', ns, 'tuntap', 'add', 'dev', TAP_NAME, 'mode', 'tap']);
    await must(['ip', '-n', ns, 'link', 'add', BRIDGE_NAME, 'type', 'bridge']);
    // The address (and with it the default route) moves to the guest.
    await must(['ip', '-n', ns, 'addr', 'flush', 'dev', 'eth0']);
    await must(['ip', '-n', ns, 'link', 'set', 'eth0', 'master', BRIDGE_NAME]);
    await must(['ip', '-n', ns, 'link', 'set', TAP_NAME, 'master', BRIDGE_NAME]);
    await must(['ip', '-n', ns, 'link', 'set', TAP_NAME, 'up']);
    await must(['ip', '-n', ns, 'link', 'set', BRIDGE_NAME, 'up']);
  } catch (err) {
    await destroy();
    throw new VmNetworkError(`could not wire the VM's tap into ${ns}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return {
    qemuArgs: ['-netdev', `tap,id=net0,ifname=${TAP_NAME},script=no,downscript=no`, ...NIC_DEVICE_ARGS],
    kernelArgs: guestKernelArgs(network.dnsServers),
    spawnPrefix: enterNetns(network),
    netnsPath: network.netnsPath,
    tap: { name: TAP_NAME, mac: GUEST_MAC },
    record: network.record,
    destroy,
  };
}
