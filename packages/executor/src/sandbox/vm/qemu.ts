import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { SandfleetError } from '@sandfleet/protocol';
import { SYSTEM_PATH } from '../shared/host.js';
import { AgentClient, type OutputListener, type StepResult } from './agent-client.js';
import type { GuestImage } from './guest-image.js';
import { AGENT_PORT_NAME } from './guest-scripts.js';
import { DEFAULT_VM_PREFIX, NETWORK_RECORD_FILE, OWNER_FILE, processIdentity, QEMU_PID_FILE, vmDirPrefix } from './janitor.js';
import type { VmNetwork } from './vm-network.js';
import { releaseVmmIdentity, type VmmIdentity } from './vmm-identity.js';

export type Accelerator = 'kvm' | 'tcg';

export class QemuError extends SandfleetError {}

export interface QemuVmOptions {
  image: GuestImage;
  /** Parent of the VM's own directory (agent socket, console log). */
  runDir: string;
  accelerator: Accelerator;
  memoryMiB: number;
  cpus: number;
  /** Give up when the agent has not said READY by then. @default 60_000 */
  bootTimeoutMs?: number;
  qemuBinary?: string;
  /** Block devices (virtio-blk), in order; the guest finds each by its serial. */
  disks?: VmDisk[];
  /**
   * A VM directory made by createVmDir (to hold the VM's disks); by default boot makes one. Teardown
   * removes a directory it made, and only its own files from one it was given.
   */
  vmDir?: string;
  /** Aborting stops a boot in progress (the VM is torn down). */
  signal?: AbortSignal;
  /**
   * The guest's NIC, from attachVmNetwork: QEMU then runs inside the job's network namespace.
   * Without it the VM has no network device (`-nic none`).
   */
  network?: Pick<VmNetwork, 'qemuArgs' | 'kernelArgs' | 'spawnPrefix' | 'record'>;
  /**
   * Drop to this uid/gid and chroot into the VM's directory once QEMU has opened its devices, files
   * and sockets, before the guest runs (vmm-identity.ts). Not for a VM that must open other files
   * later (a migration to a path).
   */
  confine?: VmmIdentity;
  /** EXECUTOR_VM_PREFIX, for the directory boot makes when not given one. @default DEFAULT_VM_PREFIX */
  vmPrefix?: string;
  /** Words added to the guest kernel's command line (e.g. the agent channel's). */
  kernelArgs?: string[];
  /** Open a QMP socket (`qmp.sock`) in the VM's directory, which saveGuestState needs. */
  control?: boolean;
  /**
   * Start from this state file (written by saveGuestState) instead of booting: the agent is not
   * asked for READY, it said so before the save; restoreGuest runs the first step.
   */
  restoreFrom?: string;
}

export interface VmDisk {
  /** A raw disk image. */
  path: string;
  /** Shown in the guest as /sys/block/vdX/serial (at most 20 characters). */
  serial: string;
  readOnly: boolean;
}

export const QMP_SOCKET = 'qmp.sock';
const INCOMING_SOCKET = 'incoming.sock';

const CONSOLE_TAIL_BYTES = 2048;
/** The guest's root can write to its console: the log file stops here, with a marker line. */
export const MAX_CONSOLE_LOG_BYTES = 1024 * 1024;
const CONSOLE_LOG = 'console.log';
/** What a QemuVm puts in its directory. */
const VM_FILES = [QEMU_PID_FILE, 'agent.sock', CONSOLE_LOG, QMP_SOCKET, INCOMING_SOCKET, ...Array.from({ length: 16 }, (_, i) => `disk${i}.img`)];

/**
 * The host's TSC rate in kHz. microvm has no PIT, HPET or PM timer to calibrate the TSC against,
 * and without `tsc_early_khz=` the guest kernel hangs in about one boot of four under TCG.
 */
export function hostTscKhz(cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8')): number {
  const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo)?.[1];
  if (!mhz) throw new QemuError('no "cpu MHz" in /proc/cpuinfo to derive tsc_early_khz from');
  return Math.round(Number(mhz) * 1000);
}

/** A value inside a QEMU `key=value,...` option, where a literal comma is written twice. */
function qemuOptionValue(value: string): string {
  return value.replaceAll(',', ',,');
}

export function qemuArgs(o: QemuVmOptions, dir: string): string[] {
  const cmdline = ['console=ttyS0', 'quiet', 'panic=-1', `tsc_early_khz=${hostTscKhz()}`, ...(o.network?.kernelArgs ?? []), ...(o.kernelArgs ?? [])];
  return [
    '-M', 'microvm',
    '-accel', o.accelerator,
    '-cpu', o.accelerator === 'kvm' ? 'host' : 'max',
    '-m', String(o.memoryMiB),
    '-smp', String(o.cpus),
    '-nodefaults', '-no-user-config', '-nographic', '-monitor', 'none', '-no-reboot',
    // QEMU's own seccomp filter: a guest that takes over the emulator still cannot exec, fork,
    // raise privileges or change scheduling and resource limits. A confined QEMU switches ids
    // after the filter is in place, so set*id stays allowed; with no capabilities left, that only
    // moves among the VMM's own ids.
    '-sandbox', `on,obsolete=deny,elevateprivileges=${o.confine ? 'allow' : 'deny'},spawn=deny,resourcecontrol=deny`,
    ...(o.confine ? ['-runas', `${o.confine.uid}:${o.confine.gid}`, '-chroot', dir] : []),
    ...(o.network?.qemuArgs ?? ['-nic', 'none']),
    // The console comes through QEMU's stdout, so the host decides how much of it is kept.
    '-serial', 'stdio',
    '-kernel', o.image.kernelPath,
    '-initrd', o.image.initrdPath,
    '-append', cmdline.join(' '),
    '-chardev', `socket,id=agent,path=${qemuOptionValue(path.join(dir, 'agent.sock'))},server=on,wait=off`,
    '-device', 'virtio-serial-device',
    '-device', `virtserialport,chardev=agent,name=${AGENT_PORT_NAME}`,
    ...(o.disks ?? []).flatMap((d, i) => diskArgs(o.confine ? { ...d, path: confinedDiskName(i) } : d, i)),
    ...(o.control ? ['-qmp', `unix:${qemuOptionValue(path.join(dir, QMP_SOCKET))},server=on,wait=off`] : []),
    ...(o.restoreFrom ? ['-incoming', `unix:${path.join(dir, INCOMING_SOCKET)}`] : []),
  ];
}

/** A confined QEMU's disk, by a name relative to its directory (its cwd before the chroot, its root after). */
const confinedDiskName = (index: number): string => `disk${index}.img`;

/**
 * Puts a confined VM's disks in its directory under confinedDiskName: a writable disk (the job's
 * own) is moved or linked there and given to the VMM's uid; a read-only one is hard-linked (image
 * disks and placeholders are world-readable inside their 0700 stores). The directory becomes
 * traversable by the VMM's gid only.
 */
function stageConfinedDisks(dir: string, disks: VmDisk[], id: VmmIdentity): void {
  for (const [i, d] of disks.entries()) {
    const target = path.join(dir, confinedDiskName(i));
    fs.rmSync(target, { force: true });
    try {
      fs.linkSync(d.path, target);
    } catch (err) {
      throw new QemuError(`cannot link ${d.path} into ${dir} for the confined VMM (the image store and the VM directory must share a filesystem): ${(err as Error).message}`);
    }
    if (!d.readOnly) fs.chownSync(target, id.uid, id.gid);
  }
  fs.chownSync(dir, 0, id.gid);
  fs.chmodSync(dir, 0o710);
}

function diskArgs(d: VmDisk, index: number): string[] {
  if (!/^[A-Za-z0-9-]{1,20}$/.test(d.serial)) throw new QemuError(`bad disk serial ${JSON.stringify(d.serial)}`);
  return [
    '-drive', `id=disk${index},if=none,format=raw,file=${qemuOptionValue(d.path)},readonly=${d.readOnly ? 'on' : 'off'},cache=unsafe,discard=ignore`,
    '-device', `virtio-blk-device,drive=disk${index},serial=${d.serial}`,
  ];
}

/**
 * A fresh 0700 VM directory under `runDir`, named with the janitor's prefix and recording its
 * owner, so what is put there (disks) is found and removed if this process dies.
 */
export function createVmDir(runDir: string, prefix = DEFAULT_VM_PREFIX): string {
  fs.mkdirSync(runDir, { recursive: true });
  const dir = fs.mkdtempSync(path.join(runDir, vmDirPrefix(prefix)));
  fs.chmodSync(dir, 0o700);
  fs.writeFileSync(path.join(dir, OWNER_FILE), `${processIdentity(process.pid)}\n`);
  return dir;
}

async function until<T>(what: () => T | undefined, deadline: number, failure: () => Error | undefined): Promise<T> {
  for (;;) {
    const err = failure();
    if (err) throw err;
    const v = what();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new QemuError('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Connects to a unix socket QEMU serves. The file appears when QEMU binds it, a moment before it
 * listens, so a refused connection is retried until the deadline.
 */
async function connectWhenListening(socketPath: string, deadline: number, failure: () => Error | undefined): Promise<net.Socket> {
  for (;;) {
    await until(() => (fs.existsSync(socketPath) ? true : undefined), deadline, failure);
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(socketPath, () => resolve(s));
        s.once('error', reject);
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || Date.now() > deadline) throw err;
      const f = failure();
      if (f) throw f;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** One QEMU microvm running the guest agent; `teardown` kills it and removes its directory. */
export class QemuVm {
  /** Milliseconds from starting QEMU to the agent's READY. */
  bootMs = 0;
  /** How the guest came up, for the job's boot log line. */
  startedHow = 'booted';
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exit: Promise<void>;
  private stderr = '';
  private consoleTail = '';
  private consoleLogged = 0;
  private consoleFd: number | undefined;
  private agent: AgentClient | undefined;

  private constructor(readonly dir: string, private readonly child: ChildProcess, readonly options: QemuVmOptions) {
    this.consoleFd = fs.openSync(path.join(dir, CONSOLE_LOG), 'w', 0o600);
    this.exit = new Promise((resolve) => child.once('exit', (code, signal) => { this.exited = { code, signal }; resolve(); }));
    child.stderr?.setEncoding('utf8').on('data', (c: string) => { this.stderr = (this.stderr + c).slice(-CONSOLE_TAIL_BYTES); });
    child.stdout?.on('data', (c: Buffer) => this.onConsole(c));
  }

  private onConsole(chunk: Buffer): void {
    this.consoleTail = (this.consoleTail + chunk.toString('latin1')).slice(-CONSOLE_TAIL_BYTES);
    if (this.consoleFd === undefined || this.consoleLogged >= MAX_CONSOLE_LOG_BYTES) return;
    const room = MAX_CONSOLE_LOG_BYTES - this.consoleLogged;
    fs.writeSync(this.consoleFd, chunk.subarray(0, room));
    this.consoleLogged += Math.min(room, chunk.length);
    if (this.consoleLogged >= MAX_CONSOLE_LOG_BYTES) fs.writeSync(this.consoleFd, `\n[console log truncated at ${MAX_CONSOLE_LOG_BYTES} bytes]\n`);
  }

  get pid(): number {
    return this.child.pid!;
  }

  static async boot(o: QemuVmOptions): Promise<QemuVm> {
    const dir = o.vmDir ?? createVmDir(o.runDir, o.vmPrefix);
    // The janitor reads this to remove the VM's network after a crash.
    if (o.network) fs.writeFileSync(path.join(dir, NETWORK_RECORD_FILE), `${JSON.stringify(o.network.record)}\n`, { mode: 0o600 });
    const started = Date.now();
    const [command, ...args] = [...(o.network?.spawnPrefix ?? []), o.qemuBinary ?? 'qemu-system-x86_64', ...qemuArgs(o, dir)];
    if (o.confine) stageConfinedDisks(dir, o.disks ?? [], o.confine);
    const child = spawn(command!, args, { env: { PATH: SYSTEM_PATH }, stdio: ['ignore', 'pipe', 'pipe'], ...(o.confine ? { cwd: dir } : {}) });
    const identity = child.pid === undefined ? undefined : processIdentity(child.pid);
    if (identity) fs.writeFileSync(path.join(dir, QEMU_PID_FILE), `${identity}\n`);
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    let spawnFailure: Error | undefined;
    void spawnError.then((e) => { spawnFailure = e; });
    const vm = new QemuVm(dir, child, o);
    try {
      const deadline = started + (o.bootTimeoutMs ?? 60_000);
      const socketPath = path.join(dir, 'agent.sock');
      const aborted = () => (o.signal?.aborted ? new QemuError('boot aborted') : undefined);
      const failure = () => spawnFailure ?? vm.exitError() ?? aborted();
      const socket = await connectWhenListening(socketPath, deadline, failure);
      vm.agent = new AgentClient(socket);
      void vm.exit.then(() => vm.agent?.fail(vm.exitError()!));
      const onAbort = () => vm.agent?.fail(new QemuError('boot aborted'));
      o.signal?.addEventListener('abort', onAbort);
      try {
        if (o.signal?.aborted) onAbort();
        if (o.restoreFrom) {
          // The agent channel is connected first: a guest restored while the host side is closed
          // would read end-of-file, and its agent would end.
          await vm.feedState(o.restoreFrom, deadline, failure);
        } else {
          const timer = setTimeout(() => vm.agent?.fail(new QemuError('the agent did not say READY in time')), Math.max(0, deadline - Date.now()));
          try {
            await vm.agent.waitReady();
          } finally {
            clearTimeout(timer);
          }
        }
      } finally {
        o.signal?.removeEventListener('abort', onAbort);
      }
      vm.bootMs = Date.now() - started;
      return vm;
    } catch (err) {
      const detail = `${err instanceof Error ? err.message : String(err)}; ${vm.diagnostics()}`;
      await vm.teardown();
      throw new QemuError(`the VM did not boot: ${detail}`);
    }
  }

  /** Streams a saved state into QEMU's `-incoming` socket; QEMU resumes the guest once it is loaded. */
  private async feedState(stateFile: string, deadline: number, failure: () => Error | undefined): Promise<void> {
    const incoming = path.join(this.dir, INCOMING_SOCKET);
    const socket = await connectWhenListening(incoming, deadline, failure);
    // QEMU closes the socket as soon as it has loaded the state, which may be before this side has
    // seen its writes finish: a close after the whole file was read is success. A state QEMU
    // could not load shows as QEMU exiting or the first step failing.
    const size = fs.statSync(stateFile).size;
    const file = fs.createReadStream(stateFile);
    try {
      await new Promise<void>((resolve, reject) => {
        let read = 0;
        let sent = false;
        const timer = setTimeout(() => reject(new QemuError('timed out sending the saved state')), Math.max(0, deadline - Date.now()));
        const settle = (err?: Error) => { clearTimeout(timer); if (err) reject(err); else resolve(); };
        // Counted as chunks are read, before they are written: by the time QEMU could have seen
        // the last byte, `sent` is set.
        file.on('data', (chunk) => { read += chunk.length; sent = read >= size; });
        file.once('error', settle);
        socket.once('error', (e) => settle(sent ? undefined : e));
        socket.once('close', () => settle(sent ? undefined : new QemuError('QEMU closed the incoming socket before the whole state was sent')));
        file.pipe(socket);
      });
    } finally {
      file.destroy();
      socket.destroy();
    }
  }

  /** Runs `script` with `sh -c` in the guest; the agent kills it after `wallSeconds`. */
  run(script: string, wallSeconds: number, onOutput?: OutputListener): Promise<StepResult> {
    if (!this.agent) throw new QemuError('the VM is not running');
    return this.agent.run(script, wallSeconds, onOutput);
  }

  private exitError(): Error | undefined {
    if (!this.exited) return undefined;
    return new QemuError(`qemu exited (${this.exited.signal ?? `code ${this.exited.code}`})`);
  }

  /** QEMU's stderr and the end of the guest console, for error messages. */
  diagnostics(): string {
    return `qemu stderr: ${this.stderr.trim() || '(none)'}; console: ${this.consoleTail.trim() || '(empty)'}`;
  }

  async teardown(): Promise<void> {
    this.agent?.fail(new QemuError('the VM was torn down'));
    if (!this.exited && this.child.pid !== undefined) {
      this.child.kill('SIGKILL');
      await this.exit;
    }
    if (this.consoleFd !== undefined) fs.closeSync(this.consoleFd);
    this.consoleFd = undefined;
    if (this.options.confine) releaseVmmIdentity(this.options.runDir, this.dir);
    if (this.options.vmDir === undefined) fs.rmSync(this.dir, { recursive: true, force: true });
    // A directory the caller made is the caller's to remove (it may hold disks another boot will use).
    else for (const f of VM_FILES) fs.rmSync(path.join(this.dir, f), { force: true });
  }
}
