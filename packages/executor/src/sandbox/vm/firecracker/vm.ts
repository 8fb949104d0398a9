import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { SandfleetError } from '@sandfleet/protocol';
import { capture } from '../../../process/run.js';
import { SYSTEM_PATH } from '../../shared/host.js';
import { OWNER_FILE, processIdentity, QEMU_PID_FILE, vmDirPrefix } from '../janitor.js';
import { FirecrackerApiClient } from './api-client.js';

/**
 * One Firecracker microVM: its process (alone, or under the jailer), its API socket and the files
 * it boots from, all in one directory under the run directory so the janitor finds leftovers by
 * prefix. Configuration follows Firecracker's pre-boot order: machine, boot source, drives, network,
 * vsock, then InstanceStart.
 */

export class FirecrackerVmError extends SandfleetError {}

export interface FirecrackerDrive {
  /** Firecracker's drive id (alphanumeric and `_`). */
  id: string;
  pathOnHost: string;
  readOnly: boolean;
  isRoot?: boolean;
  /** The file is this VM's alone (the job's workspace): jailed, it is moved into the chroot and given to the jail's user. */
  ownedByVm?: boolean;
}

export interface JailerOptions {
  binary: string;
  uid: number;
  gid: number;
}

export interface FirecrackerVmOptions {
  firecracker: string;
  /** Run Firecracker through the jailer (chroot, uid/gid switch) when set. */
  jailer?: JailerOptions | undefined;
  /** Parent of the VM's own directory. */
  runDir: string;
  /** EXECUTOR_VM_PREFIX, for the directory made when not given one. */
  vmPrefix?: string;
  /** Use this directory (made by createVmDir, e.g. holding the job's disks) instead of making one. */
  vmDir?: string;
  /** Run the VMM in this network namespace (nsenter, or the jailer's --netns), where its tap is. */
  netnsPath?: string;
  kernelPath: string;
  initrdPath?: string | undefined;
  bootArgs: string;
  vcpus: number;
  memoryMiB: number;
  /** Read-only drives (e.g. the step image's root filesystem). */
  drives?: FirecrackerDrive[];
  /** Size of the job's own ext4 workspace disk, created in the VM directory; 0 = none. */
  workspaceBytes: number;
  /** A tap device prepared by the network layer. */
  tap?: { hostDevName: string; guestMac?: string } | undefined;
  /** Guest CID for the vsock device (>= 3). @default 3 */
  guestCid?: number;
  /** Give up when the API socket is not up by then. @default 10_000 */
  apiTimeoutMs?: number;
}

/** How long `stop` waits for the guest to shut down after Ctrl+Alt+Del before killing the VMM. */
export const SHUTDOWN_GRACE_MS = 3_000;
export const WORKSPACE_DRIVE_ID = 'workspace';
const API_SOCKET = 'api.socket';
const VSOCK_SOCKET = 'vsock.sock';
const JAIL_DIR = 'jail';
const CONSOLE_TAIL_BYTES = 4096;
/** The jailer's limit: alphanumeric and hyphens, at most 64 characters. */
const VM_ID = /^[A-Za-z0-9-]{1,64}$/;

export interface Timings {
  /** Spawn to the API socket answering. */
  apiReadyMs: number;
  /** First configuration request to InstanceStart's answer. */
  configureAndStartMs: number;
}

export class FirecrackerVm {
  readonly api: FirecrackerApiClient;
  readonly timings: Timings = { apiReadyMs: 0, configureAndStartMs: 0 };
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exit: Promise<void>;
  private consoleTail = '';
  private cleaned = false;

  private constructor(
    readonly id: string,
    /** The VM directory on the host; with the jailer, the chroot is `<dir>/jail/<exec name>/<id>/root`. */
    readonly dir: string,
    /** The host path of what Firecracker sees as `/` (its chroot, or `/`). */
    private readonly root: string,
    private readonly child: ChildProcess,
    private readonly options: FirecrackerVmOptions,
  ) {
    this.api = new FirecrackerApiClient(path.join(dir, API_SOCKET));
    this.exit = new Promise((resolve) => child.once('exit', (code, signal) => { this.exited = { code, signal }; resolve(); }));
    const keep = (c: Buffer) => { this.consoleTail = (this.consoleTail + c.toString('latin1')).slice(-CONSOLE_TAIL_BYTES); };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exited === undefined;
  }

  /** The host side of the vsock device: `CONNECT <port>` here reaches a guest listener. */
  get vsockPath(): string {
    return path.join(this.dir, VSOCK_SOCKET);
  }

  /** Where the jailed VMM's files are on the host; undefined when it is not jailed. */
  get chroot(): string | undefined {
    return this.root === '/' ? undefined : this.root;
  }

  /** The path Firecracker is given for a file in the VM directory (its own view when jailed). */
  private vmPath(file: string): string {
    return this.root === '/' ? path.join(this.dir, file) : `/${file}`;
  }

  /** Spawns Firecracker, waits for its API socket, configures the VM and starts it. */
  static async launch(o: FirecrackerVmOptions): Promise<FirecrackerVm> {
    let dir = o.vmDir;
    if (!dir) {
      fs.mkdirSync(o.runDir, { recursive: true });
      dir = fs.mkdtempSync(path.join(o.runDir, vmDirPrefix(o.vmPrefix)));
      fs.chmodSync(dir, 0o700);
      fs.writeFileSync(path.join(dir, OWNER_FILE), `${processIdentity(process.pid)}\n`);
    }
    const id = path.basename(dir);
    let vm: FirecrackerVm | undefined;
    try {
      if (!VM_ID.test(id)) throw new FirecrackerVmError(`VM id ${JSON.stringify(id)} is not alphanumeric-and-hyphens of at most 64 characters`);
      const root = o.jailer ? prepareJail(dir, id, o) : '/';
      // A socket path may not exceed 107 bytes, and the chroot's are long: the host reaches them
      // through short links in the VM directory (connect() follows symlinks).
      if (o.jailer) for (const s of [API_SOCKET, VSOCK_SOCKET]) fs.symlinkSync(path.join(root, s), path.join(dir, s));
      const filesDir = root === '/' ? dir : root;
      if (o.workspaceBytes > 0) {
        const disk = path.join(filesDir, `${WORKSPACE_DRIVE_ID}.ext4`);
        await createExt4(disk, o.workspaceBytes);
        if (o.jailer) fs.chownSync(disk, o.jailer.uid, o.jailer.gid);
      }
      const started = Date.now();
      const child = spawnVmm(o, dir, id);
      const identity = child.pid === undefined ? undefined : processIdentity(child.pid);
      if (identity) fs.writeFileSync(path.join(dir, QEMU_PID_FILE), `${identity}\n`);
      vm = new FirecrackerVm(id, dir, root, child, o);
      const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
      await vm.waitForApi(started + (o.apiTimeoutMs ?? 10_000), spawnError);
      vm.timings.apiReadyMs = Date.now() - started;
      const configured = Date.now();
      await vm.configure(filesDir);
      await vm.api.put('/actions', { action_type: 'InstanceStart' });
      vm.timings.configureAndStartMs = Date.now() - configured;
      return vm;
    } catch (err) {
      const detail = vm ? `; ${vm.diagnostics()}` : '';
      if (vm) await vm.cleanup();
      else fs.rmSync(dir, { recursive: true, force: true });
      if (err instanceof SandfleetError && !detail) throw err;
      throw new FirecrackerVmError(`the Firecracker VM did not start: ${err instanceof Error ? err.message : String(err)}${detail}`);
    }
  }

  private async waitForApi(deadline: number, spawnError: Promise<Error>): Promise<void> {
    let failure: Error | undefined;
    void spawnError.then((e) => { failure = e; });
    const socket = this.api.socketPath;
    for (;;) {
      if (failure) throw new FirecrackerVmError(`cannot start ${this.options.jailer?.binary ?? this.options.firecracker}: ${failure.message}`);
      if (this.exited) throw new FirecrackerVmError(`firecracker exited before its API came up (${this.exited.signal ?? `code ${this.exited.code}`})`);
      if (fs.existsSync(socket) && (await connects(socket))) return;
      if (Date.now() > deadline) throw new FirecrackerVmError(`the API socket ${socket} did not come up in time`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async configure(filesDir: string): Promise<void> {
    const o = this.options;
    await this.api.put('/machine-config', { vcpu_count: o.vcpus, mem_size_mib: o.memoryMiB, smt: false });
    await this.api.put('/boot-source', {
      kernel_image_path: this.vmPath(path.relative(filesDir, this.stage(filesDir, o.kernelPath, 'vmlinux'))),
      ...(o.initrdPath ? { initrd_path: this.vmPath(path.relative(filesDir, this.stage(filesDir, o.initrdPath, 'initrd'))) } : {}),
      boot_args: o.bootArgs,
    });
    for (const d of o.drives ?? []) {
      const staged = this.stage(filesDir, d.pathOnHost, `drive-${d.id}`, d.ownedByVm === true);
      await this.api.put(`/drives/${d.id}`, { drive_id: d.id, path_on_host: this.vmPath(path.relative(filesDir, staged)), is_root_device: d.isRoot === true, is_read_only: d.readOnly });
    }
    if (o.workspaceBytes > 0) {
      await this.api.put(`/drives/${WORKSPACE_DRIVE_ID}`, { drive_id: WORKSPACE_DRIVE_ID, path_on_host: this.vmPath(`${WORKSPACE_DRIVE_ID}.ext4`), is_root_device: false, is_read_only: false });
    }
    if (o.tap) {
      await this.api.put('/network-interfaces/eth0', { iface_id: 'eth0', host_dev_name: o.tap.hostDevName, ...(o.tap.guestMac ? { guest_mac: o.tap.guestMac } : {}) });
    }
    await this.api.put('/vsock', { guest_cid: o.guestCid ?? 3, uds_path: this.vmPath(VSOCK_SOCKET) });
  }

  /**
   * Unjailed, Firecracker opens host files where they are. Jailed, it sees only its chroot, so a
   * file of this VM's own is moved in and given to the jail's user, a world-readable one is
   * hard-linked in (a link shares the inode, so its owner is left alone), and anything else is
   * copied and the copy given to the jail's user.
   */
  private stage(filesDir: string, file: string, name: string, owned = false): string {
    const jailer = this.options.jailer;
    if (!jailer) return file;
    const target = path.join(filesDir, name);
    if (owned) {
      try {
        fs.renameSync(file, target);
        fs.chownSync(target, jailer.uid, jailer.gid);
        return target;
      } catch {
        // another file system: copy
      }
    }
    if (fs.statSync(file).mode & 0o004) {
      try {
        fs.linkSync(file, target);
        return target;
      } catch {
        // another file system: copy
      }
    }
    fs.copyFileSync(file, target);
    fs.chownSync(target, jailer.uid, jailer.gid);
    fs.chmodSync(target, 0o400);
    return target;
  }

  /** Asks the guest to shut down (Ctrl+Alt+Del), then kills the VMM if it is still there after the grace period. */
  async stop(graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
    if (this.exited) return;
    try {
      // Its own timeout: a wedged VMM must not hold the stop for the API's usual 10 s.
      await new FirecrackerApiClient(this.api.socketPath, graceMs).put('/actions', { action_type: 'SendCtrlAltDel' });
      await Promise.race([this.exit, new Promise((r) => setTimeout(r, graceMs).unref())]);
    } catch {
      // The API is gone or the VM never started: killing it is all that is left.
    }
    if (!this.exited) {
      this.child.kill('SIGKILL');
      await this.exit;
    }
  }

  /** Stops the VM and removes its socket, chroot, disks and directory. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    if (!this.exited && this.child.pid !== undefined) {
      this.child.kill('SIGKILL');
      await this.exit;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** The end of Firecracker's output (its log and the guest console), for error messages. */
  diagnostics(): string {
    return `firecracker output: ${this.consoleTail.trim().slice(-1000) || '(none)'}`;
  }
}

function spawnVmm(o: FirecrackerVmOptions, dir: string, id: string): ChildProcess {
  const stdio: ['ignore', 'pipe', 'pipe'] = ['ignore', 'pipe', 'pipe'];
  const env = { PATH: SYSTEM_PATH };
  if (!o.jailer) {
    const argv = [o.firecracker, '--api-sock', path.join(dir, API_SOCKET), '--id', id];
    const [command, ...args] = o.netnsPath ? ['nsenter', `--net=${o.netnsPath}`, '--', ...argv] : argv;
    return spawn(command!, args, { env, stdio });
  }
  // The jailer copies the binary into <chroot base>/<exec name>/<id>/root, chroots there, drops
  // to uid/gid and execs it with the arguments after `--` (paths then relative to the chroot).
  return spawn(o.jailer.binary, [
    '--id', id,
    '--exec-file', o.firecracker,
    '--uid', String(o.jailer.uid),
    '--gid', String(o.jailer.gid),
    '--chroot-base-dir', path.join(dir, JAIL_DIR),
    ...(o.netnsPath ? ['--netns', o.netnsPath] : []),
    '--',
    '--api-sock', `/${API_SOCKET}`,
  ], { env, stdio });
}

/** Creates the chroot the jailer will use (it leaves an existing one alone) so files can be staged first. */
function prepareJail(dir: string, id: string, o: FirecrackerVmOptions): string {
  const root = path.join(dir, JAIL_DIR, path.basename(o.firecracker), id, 'root');
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  fs.chownSync(root, o.jailer!.uid, o.jailer!.gid);
  return root;
}

/** A sparse file of `bytes` formatted as ext4: the job's workspace disk. */
async function createExt4(file: string, bytes: number): Promise<void> {
  fs.writeFileSync(file, '', { mode: 0o600 });
  fs.truncateSync(file, bytes);
  const r = await capture(['mkfs.ext4', '-q', '-F', '-L', 'workspace', '-m', '0', file], { env: { PATH: SYSTEM_PATH } });
  if (r.exitCode !== 0) throw new FirecrackerVmError(`mkfs.ext4 for the workspace disk exited ${r.exitCode}: ${r.stderr.trim().slice(0, 300)}`);
}

function connects(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath, () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
