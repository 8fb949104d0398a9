import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { SandfleetError } from '@sandfleet/protocol';
import { capture } from '../../process/run.js';
import { ID_SHIFT } from '../../image/ids.js';

const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

/** The image's own /etc is a symbolic link: the executor would have to write through it. */
export class SymlinkedEtcError extends SandfleetError {
  constructor(readonly target: string) {
    super(`the image's /etc is a symbolic link (to ${target}); images must have a real /etc directory`);
  }
}

/** The files the executor puts into every step's /etc, in place of the image's. */
export interface StepEtcFiles {
  hosts: string;
  resolvConf: string;
}

async function must(argv: string[]): Promise<void> {
  const r = await capture(argv, { env: ENV });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim()}`);
}

/**
 * Runs commands one after another in one shell, stopping at the first that fails: a process spawned
 * from the executor costs several milliseconds (a fork of a large process), an exec from sh one.
 */
async function mustAll(commands: string[][]): Promise<void> {
  const script = commands.map((argv) => `${argv.map(shellQuote).join(' ')} || { echo ${shellQuote(`${argv.join(' ')} failed`)} >&2; exit 1; }`).join('\n');
  const r = await capture(['/bin/sh', '-c', script], { env: ENV });
  if (r.exitCode !== 0) throw new Error(`${(r.stderr || r.stdout).trim()} (exit ${r.exitCode})`);
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** mkfs options of every job disk: no journal and lazy init, a sparse scratch disk thrown away with the job. */
const MKFS = ['mkfs.ext4', '-q', '-F', '-m', '0', '-O', '^has_journal', '-E', 'lazy_itable_init=1,nodiscard'];

/**
 * A freshly made, never mounted ext4 image of `bytes`, made once per size under
 * `<stateDir>/disk-templates/` (root only). Each job gets a sparse copy of it (`cp --sparse`, a few
 * hundred KiB of metadata) instead of running mkfs, which costs tens of milliseconds; the copy is the
 * job's own, so nothing one job writes is ever seen by another.
 */
async function diskTemplate(stateDir: string, bytes: number): Promise<string> {
  const dir = path.join(stateDir, 'disk-templates');
  const template = path.join(dir, `ext4-${bytes}.img`);
  if (await fs.access(template).then(() => true, () => false)) return template;
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
  // Made under a unique name and renamed into place: executors sharing the state directory never see half an image.
  const partial = path.join(dir, `.ext4-${bytes}-${process.pid}-${Date.now()}.img`);
  try {
    const fh = await fs.open(partial, 'wx', 0o600);
    await fh.truncate(bytes);
    await fh.close();
    await must([...MKFS, partial]);
    await fs.rename(partial, template);
  } finally {
    await fs.rm(partial, { force: true });
  }
  return template;
}

/**
 * The job's disk: one ext4 filesystem in a sparse loop file of `diskBytes` that holds the
 * workspace and every step's writable layer, so a job that fills its disk gets ENOSPC and the host
 * does not notice. Layout under `<stateDir>/jobs/<key>/`:
 *
 *   disk.img          the sparse file (only with a disk limit)
 *   disk/             its mount point (a plain directory without a limit)
 *   disk/data/        the workspace as the sandbox sees it at /data
 *   disk/steps/<n>/   upper and work directories of step n's overlay
 *   disk/layers/<n>/  a directory bound over another program's (docker: a container's layer)
 *   steps/<n>/root    step n's root: overlay of the shared read-only image rootfs + its upper dir
 *
 * The caller's workspace directory is empty: the workspace is prepared after the sandbox, straight
 * into it. With a disk, disk/data is bind-mounted over that directory for the job's lifetime, so
 * what host-side code writes there (clone, files, step scripts) is on the job's disk and it sees
 * exactly what the steps see. Without one, the caller's directory is bind-mounted onto disk/data
 * instead. Either way the workspace's files are chowned to the step's user before it runs.
 * Every directory on the way is 0711 so sandboxes running as unprivileged
 * host uids can reach their mounts but not list anything.
 */
export class JobFilesystem {
  private owner: string | undefined;
  private readonly mounts: string[] = [];
  /** bindOver targets (outside jobDir) → their directory on the job's disk. */
  private readonly binds = new Map<string, string>();

  private constructor(readonly jobDir: string, readonly workspaceDir: string, readonly diskBytes: number, readonly idShift: number) {}

  get dataDir(): string {
    return path.join(this.jobDir, 'disk', 'data');
  }

  /** `idShift`: how the runtime's image ids map to host ids (ID_SHIFT, or 0 for gVisor). */
  static async create(stateDir: string, key: string, workspaceDir: string, diskBytes: number, idShift = ID_SHIFT): Promise<JobFilesystem> {
    const jobDir = path.join(stateDir, 'jobs', key);
    const jfs = new JobFilesystem(jobDir, workspaceDir, diskBytes, idShift);
    try {
      await jfs.setUp(stateDir);
    } catch (err) {
      await jfs.destroy();
      throw err;
    }
    return jfs;
  }

  private async setUp(stateDir: string): Promise<void> {
    for (const dir of [stateDir, path.join(stateDir, 'jobs')]) {
      await fs.mkdir(dir, { recursive: true });
      await fs.chmod(dir, 0o711);
    }
    await fs.mkdir(this.jobDir, { mode: 0o711 });
    const disk = path.join(this.jobDir, 'disk');
    await fs.mkdir(disk, { mode: 0o711 });
    if (this.diskBytes > 0) {
      const image = path.join(this.jobDir, 'disk.img');
      const template = await diskTemplate(stateDir, this.diskBytes);
      await assertEmpty(this.workspaceDir);
      // The mount is recorded first: destroy() then undoes it whatever point the script reached.
      this.mounts.push(disk);
      await mustAll([
        ['cp', '--sparse=always', template, image],
        ['chmod', '600', image],
        ['mount', '-o', 'loop,nosuid,nodev', image, disk],
        ['chmod', '711', disk],
        ['mkdir', '-m', '755', this.dataDir],
        // Last, so that a failed script never leaves it mounted unrecorded.
        bindNoSuidCommand(this.dataDir, this.workspaceDir),
      ]);
      this.mounts.push(this.workspaceDir);
    } else {
      await fs.mkdir(this.dataDir, { mode: 0o755 });
      // The host's side of the workspace too: a setuid file a step plants (image root is host root
      // under gVisor) must not be setuid where host users can reach it either.
      await bindNoSuid(this.workspaceDir, this.workspaceDir);
      this.mounts.push(this.workspaceDir);
      await bindNoSuid(this.workspaceDir, this.dataDir);
      this.mounts.push(this.dataDir);
    }
    await fs.mkdir(path.join(disk, 'steps'), { mode: 0o700 });
    await fs.mkdir(path.join(this.jobDir, 'steps'), { mode: 0o711 });
  }

  /** Makes the workspace owned by the step's user (host ids shifted), once per distinct user. */
  async ownWorkspace(uid: number, gid: number): Promise<void> {
    const owner = `${uid + this.idShift}:${gid + this.idShift}`;
    if (owner === this.owner) return;
    await must(['chown', '-R', owner, this.dataDir]);
    this.owner = owner;
  }

  /**
   * A fresh writable root for one step: overlay of `rootfs` with an upper dir on the job's disk,
   * with the executor's `etc` files. The root is the image's: nothing here follows a symbolic link
   * it holds (one could point anywhere on the host), entries are checked with lstat and files are
   * opened with O_NOFOLLOW below a /etc that is known to be a real directory.
   */
  async stepRoot(rootfs: string, name: string, etc: StepEtcFiles): Promise<{ root: string; release: () => Promise<void> }> {
    const layer = path.join(this.jobDir, 'disk', 'steps', name);
    const root = path.join(this.jobDir, 'steps', name, 'root');
    await fs.mkdir(path.join(layer, 'upper'), { recursive: true });
    await fs.mkdir(path.join(layer, 'work'), { recursive: true });
    await fs.chown(path.join(layer, 'upper'), this.idShift, this.idShift);
    await fs.mkdir(root, { recursive: true, mode: 0o711 });
    await fs.chmod(path.dirname(root), 0o711);
    await must(['mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${rootfs},upperdir=${layer}/upper,workdir=${layer}/work,nosuid,nodev`, root]);
    const release = async () => {
      await umount(root);
      await fs.rm(path.join(this.jobDir, 'steps', name), { recursive: true, force: true });
      await fs.rm(layer, { recursive: true, force: true });
    };
    try {
      await this.prepareStepRoot(root, etc);
    } catch (err) {
      await release();
      throw err;
    }
    return { root, release };
  }

  private async prepareStepRoot(root: string, etc: StepEtcFiles): Promise<void> {
    const etcDir = path.join(root, 'etc');
    const etcStat = await fs.lstat(etcDir).catch(() => undefined);
    if (etcStat?.isSymbolicLink()) throw new SymlinkedEtcError(await fs.readlink(etcDir));
    // Mount points the sandboxes need, made in the writable layer (never in the shared rootfs). What
    // is mounted over anyway may be replaced; only a real directory is a safe mount point.
    for (const dir of ['data', 'tmp', 'proc', 'dev', 'sys', 'etc']) {
      const p = path.join(root, dir);
      const st = await fs.lstat(p).catch(() => undefined);
      if (st?.isDirectory()) continue;
      if (st) await fs.rm(p, { recursive: true, force: true });
      await fs.mkdir(p, { mode: dir === 'tmp' ? 0o1777 : 0o755 });
      await fs.chown(p, this.idShift, this.idShift);
    }
    await this.writeEtcFile(etcDir, 'resolv.conf', etc.resolvConf);
    await this.writeEtcFile(etcDir, 'hosts', etc.hosts);
  }

  /** Writes `etcDir/name` as a regular file, replacing whatever the image has there (never following it). */
  private async writeEtcFile(etcDir: string, name: string, content: string): Promise<void> {
    const p = path.join(etcDir, name);
    const st = await fs.lstat(p).catch(() => undefined);
    if (st && !st.isFile()) await fs.rm(p, { recursive: true, force: true });
    const fh = await fs.open(p, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644);
    try {
      await fh.writeFile(content);
      await fh.chown(this.idShift, this.idShift);
      await fh.chmod(0o644);
    } finally {
      await fh.close();
    }
  }

  /**
   * Puts another program's directory on the job's disk: a copy of `target` (contents, owner and
   * mode) is made under disk/layers/<name> and bind-mounted over `target` until `release`. The
   * docker runtime uses it for a created container's overlay2 layer directory, so what a step writes
   * to its root counts against the job's disk like its writes to /data (overlayfs needs its upper
   * and work directories on one mount, hence the whole layer directory rather than `diff`).
   */
  async bindOver(target: string, name: string): Promise<{ release: () => Promise<void> }> {
    const dir = path.join(this.jobDir, 'disk', 'layers', name);
    await fs.mkdir(path.dirname(dir), { recursive: true, mode: 0o711 });
    await fs.mkdir(dir);
    const st = await fs.stat(target);
    await must(['cp', '-a', `${target}/.`, `${dir}/`]);
    await fs.chown(dir, st.uid, st.gid);
    await fs.chmod(dir, st.mode & 0o7777);
    await must(['mount', '--bind', dir, target]);
    this.binds.set(target, dir);
    return { release: () => this.releaseBind(target) };
  }

  private async releaseBind(target: string): Promise<void> {
    const dir = this.binds.get(target);
    if (dir === undefined) return;
    await umount(target);
    this.binds.delete(target);
    await fs.rm(dir, { recursive: true, force: true });
  }

  async destroy(): Promise<void> {
    for (const target of [...this.binds.keys()]) await this.releaseBind(target);
    await umountAll(this.mounts.splice(0).reverse());
    // Step roots left mounted by a failed step.
    const steps = await fs.readdir(path.join(this.jobDir, 'steps')).catch(() => [] as string[]);
    for (const s of steps) await umount(path.join(this.jobDir, 'steps', s, 'root'));
    // Never recurse into something still mounted (the caller's workspace could be behind it).
    const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8');
    const prefix = this.jobDir + '/';
    const left = mountinfo.split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m === this.jobDir || m.startsWith(prefix));
    if (left.length) throw new Error(`cannot remove ${this.jobDir}: still mounted: ${left.join(', ')}`);
    await fs.rm(this.jobDir, { recursive: true, force: true });
  }
}

/** A bind over a non-empty directory would hide what is in it from the job. */
async function assertEmpty(dir: string): Promise<void> {
  const entries = await fs.readdir(dir);
  if (entries.length > 0) throw new Error(`the workspace directory ${dir} must be empty when the sandbox is prepared (it holds ${entries.slice(0, 3).join(', ')})`);
}

/**
 * Bind-mounts `source` on `target` and makes that mount nosuid,nodev whatever `source`'s mount is
 * (mount(8) applies the flags with a second, remounting mount call of its own).
 */
function bindNoSuidCommand(source: string, target: string): string[] {
  return ['mount', '--bind', '-o', 'nosuid,nodev', source, target];
}

async function bindNoSuid(source: string, target: string): Promise<void> {
  await must(bindNoSuidCommand(source, target));
}

/** Unmounts `targets` in order with one umount; when that fails, one by one as umount() does. */
async function umountAll(targets: string[]): Promise<void> {
  if (targets.length === 0) return;
  const r = await capture(['umount', ...targets], { env: ENV });
  if (r.exitCode === 0) return;
  for (const target of targets) await umount(target);
}

async function umount(target: string): Promise<void> {
  const r = await capture(['umount', target], { env: ENV });
  if (r.exitCode !== 0 && !/not mounted|no mount point|not found/i.test(r.stderr)) {
    // Busy (a process still holds it): detach lazily so teardown can finish.
    await capture(['umount', '-l', target], { env: ENV });
  }
}
