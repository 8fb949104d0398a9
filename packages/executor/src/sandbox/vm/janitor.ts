import fs from 'node:fs';
import path from 'node:path';
import { parseJobNetworkRecord, removeJobNetworkRecord } from '../../network/job-network.js';
import { releaseVmmIdentity } from './vmm-identity.js';

/**
 * Finds VMs whose executor died (SIGKILL, a crash): QEMU outlives its parent, so each VM directory
 * records its owner and its QEMU as `<pid> <start time>` (the start time tells a reused pid apart).
 * A VM whose owner is gone has its QEMU killed and its directory removed; VMs of live executors
 * sharing the directory are left alone. A VM with a network also records its job network's
 * namespaces and slot, which are removed once its QEMU is dead (a live QEMU would keep the
 * namespace alive), so a crashed executor leaves no tap, bridge, router or uplink veth behind.
 */
/**
 * EXECUTOR_VM_PREFIX's default: VM directories are `<prefix>-<random>`, so leftovers of a crashed
 * executor are found by their prefix, and executors with different prefixes sharing a state
 * directory leave each other's VMs alone.
 */
export const DEFAULT_VM_PREFIX = 'executor';
/** The directory-name prefix for EXECUTOR_VM_PREFIX `prefix`. */
export const vmDirPrefix = (prefix = DEFAULT_VM_PREFIX): string => `${prefix}-`;
/** The directory-name prefix of the default EXECUTOR_VM_PREFIX. */
export const VM_DIR_PREFIX = vmDirPrefix();
export const OWNER_FILE = 'owner';
export const QEMU_PID_FILE = 'qemu.pid';
export const NETWORK_RECORD_FILE = 'network.json';

/** `<pid> <start time in clock ticks since boot>`, or undefined when the process is gone. */
export function processIdentity(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22, counted after the parenthesised command name (which may hold spaces).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return `${pid} ${fields[19]}`;
  } catch {
    return undefined;
  }
}

function alive(identity: string): boolean {
  const pid = Number(identity.split(' ')[0]);
  return Number.isInteger(pid) && pid > 0 && processIdentity(pid) === identity;
}

function readIdentity(file: string): string | undefined {
  try {
    const text = fs.readFileSync(file, 'utf8').trim();
    return /^\d+ \d+$/.test(text) ? text : undefined;
  } catch {
    return undefined;
  }
}

async function killAndWait(identity: string, vmDir: string): Promise<void> {
  const pid = Number(identity.split(' ')[0]);
  // Only the VMM that serves this directory: its command line names the directory, or (a jailed
  // Firecracker, which sees only chroot paths) carries the directory's name as its `--id`.
  const cmdline = (() => { try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { return ''; } })();
  const args = cmdline.split('\0');
  const servesDir = cmdline.includes(vmDir) || args.some((a, i) => a === '--id' && args[i + 1] === path.basename(vmDir));
  if (!alive(identity) || !servesDir) return;
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 500 && alive(identity); i++) await new Promise((r) => setTimeout(r, 20));
}

async function removeRecordedNetwork(file: string): Promise<void> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return;
  }
  // A record that does not parse names nothing we may delete; the directory still goes.
  let record;
  try {
    record = parseJobNetworkRecord(text);
  } catch {
    return;
  }
  await removeJobNetworkRecord(record);
}

/** Removes the VMs in `runDir` whose owner process is gone; returns their directories. */
export async function reapOrphanedVms(runDir: string, prefix = DEFAULT_VM_PREFIX): Promise<string[]> {
  let names: string[];
  try {
    names = fs.readdirSync(runDir).filter((n) => n.startsWith(vmDirPrefix(prefix)));
  } catch {
    return [];
  }
  const reaped: string[] = [];
  for (const name of names) {
    const dir = path.join(runDir, name);
    const owner = readIdentity(path.join(dir, OWNER_FILE));
    // A directory without an owner yet may be a VM being created this instant: only an old one is stale.
    if (owner ? alive(owner) : Date.now() - fs.statSync(dir).mtimeMs < 60_000) continue;
    const qemu = readIdentity(path.join(dir, QEMU_PID_FILE));
    if (qemu) await killAndWait(qemu, dir);
    await removeRecordedNetwork(path.join(dir, NETWORK_RECORD_FILE));
    releaseVmmIdentity(runDir, dir);
    fs.rmSync(dir, { recursive: true, force: true });
    reaped.push(dir);
  }
  return reaped;
}
