import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { SandfleetError } from '@sandfleet/protocol';
import { Qmp } from './qmp.js';
import { QMP_SOCKET, QemuVm, type QemuVmOptions } from './qemu.js';

/**
 * Warm start: a guest booted once to an idle agent has its state saved with QEMU migration (over a
 * unix socket: QEMU 7.2 has no `file:` migration, and its seccomp filter forbids `exec:`), and each
 * job's VM is restored from that file with `-incoming` instead of booting.
 *
 * Every restore reads the file into the new QEMU's own private memory, so each job starts from the
 * same idle state and nothing a job does reaches the file or another job: a fresh copy per job,
 * not pages shared copy-on-write (each VM holds its whole memory, and pays for reading the file).
 * The guest's root is the initramfs, in that memory; job-template.ts saves guests with disk slots.
 *
 * A restored guest resumes with the save's kernel RNG state and clock, so restoreGuest's first
 * step mixes host random bytes into the guest's input pool and reseeds its CRNG from it at once
 * (RNDRESEEDCRNG, through socat's generic ioctl option: mixing alone would reach the CRNG only at
 * its next scheduled reseed, and until then guests restored from one state could draw the same
 * bytes), sets its clock, and with a NIC forgets the saving VM's router MAC (each job's router has
 * its own; the addresses are the same in every job, so one saved state serves every job of a host).
 * The state fits only the device set it was saved
 * with: the save records a fingerprint of the options that shape it, and other options are refused.
 */
export class WarmStartError extends SandfleetError {}

const FINGERPRINT_SUFFIX = '.json';

/** What must match between the saving and the restoring VM. */
export function stateFingerprint(o: QemuVmOptions): string {
  const shape = {
    image: o.image.outputDigest,
    accelerator: o.accelerator,
    memoryMiB: o.memoryMiB,
    cpus: o.cpus,
    network: o.network ? { qemuArgs: o.network.qemuArgs, kernelArgs: o.network.kernelArgs } : null,
    qemu: o.qemuBinary ?? 'qemu-system-x86_64',
  };
  return createHash('sha256').update(JSON.stringify(shape)).digest('hex');
}

async function untilMigrated(qmp: Qmp, deadline: number): Promise<void> {
  for (;;) {
    const status = (await qmp.execute('query-migrate')) as { status?: string; 'error-desc'?: string };
    if (status.status === 'completed') return;
    if (status.status === 'failed' || status.status === 'cancelled') throw new WarmStartError(`the migration ${status.status}: ${status['error-desc'] ?? 'no reason given'}`);
    if (Date.now() > deadline) throw new WarmStartError('the migration did not complete in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Saves a running guest (booted with `control: true`, its agent idle) to `stateFile`; the VM is
 * left paused, for the caller to tear down.
 */
export async function saveGuestState(vm: QemuVm, stateFile: string, timeoutMs = 120_000, fingerprint = stateFingerprint(vm.options)): Promise<void> {
  if (!vm.options.control) throw new WarmStartError('saving a guest needs a VM booted with control: true');
  const deadline = Date.now() + timeoutMs;
  const partial = `${stateFile}.partial-${process.pid}`;
  const receiver = path.join(vm.dir, 'save.sock');
  const server = net.createServer();
  const qmp = await Qmp.connect(path.join(vm.dir, QMP_SOCKET));
  try {
    const received = new Promise<void>((resolve, reject) => {
      server.once('connection', (socket) => {
        server.close();
        pipeline(socket, fs.createWriteStream(partial, { mode: 0o600 })).then(resolve, reject);
      });
      server.once('error', reject);
    });
    await new Promise<void>((resolve) => server.listen(receiver, resolve));
    await qmp.execute('migrate', { uri: `unix:${receiver}` });
    await untilMigrated(qmp, deadline);
    await received;
    fs.writeFileSync(`${stateFile}${FINGERPRINT_SUFFIX}`, `${JSON.stringify({ fingerprint })}\n`, { mode: 0o600 });
    fs.renameSync(partial, stateFile);
  } finally {
    qmp.close();
    server.close();
    fs.rmSync(partial, { force: true });
  }
}

function recordedFingerprint(stateFile: string): string | undefined {
  try {
    return (JSON.parse(fs.readFileSync(`${stateFile}${FINGERPRINT_SUFFIX}`, 'utf8')) as { fingerprint?: string }).fingerprint;
  } catch {
    return undefined;
  }
}

/** _IO('R', 0x07): reseed the CRNG from the input pool now (needs CAP_SYS_ADMIN; the agent is root). */
const RNDRESEEDCRNG = 0x5207;

/** The first step of a restored guest: reseed, set the clock, forget the saving VM's neighbours. */
export function restoredGuestScript(seed: Buffer, epochSeconds: number, hasNetwork: boolean): string {
  return [
    `echo ${seed.toString('base64')} | base64 -d > /dev/urandom`,
    `socat -u OPEN:/dev/null OPEN:/dev/urandom,wronly,ioctl-void=${RNDRESEEDCRNG}`,
    `date -s @${Math.floor(epochSeconds)} > /dev/null`,
    ...(hasNetwork ? ['{ [ ! -e /sys/class/net/eth0 ] || ip neigh flush dev eth0; }'] : []),
  ].join(' && ');
}

/** Starts a VM for `o` from `stateFile` (saved for the same options) and readies it for a job. */
export async function restoreGuest(o: QemuVmOptions, stateFile: string, fingerprint = stateFingerprint(o)): Promise<QemuVm> {
  const recorded = recordedFingerprint(stateFile);
  if (!recorded || !fs.existsSync(stateFile)) throw new WarmStartError(`${stateFile} is not a saved guest state`);
  if (recorded !== fingerprint) throw new WarmStartError(`${stateFile} was saved for other VM options (image, accelerator, memory, cpus, network or QEMU binary)`);
  const started = Date.now();
  const vm = await QemuVm.boot({ ...o, restoreFrom: stateFile });
  try {
    const r = await vm.run(restoredGuestScript(randomBytes(64), Date.now() / 1000, !!o.network), 30);
    if (r.exitCode !== 0) throw new WarmStartError(`the restored guest's first step failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
  } catch (err) {
    await vm.teardown();
    throw err;
  }
  vm.bootMs = Date.now() - started;
  vm.startedHow = 'restored from a saved idle guest';
  return vm;
}
