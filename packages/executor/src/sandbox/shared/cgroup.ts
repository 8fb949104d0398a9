import fs from 'node:fs';
import path from 'node:path';
import type { JobLimits } from '../runtime.js';

/**
 * A job's cgroup, holding its memory, pids and cpu limits. Steps (and the cgroups OCI runtimes make
 * for them) live *below* it, so the limit covers the whole job and the OOM counter survives the
 * step's own cgroup being removed by runc.
 *
 * Layout is detected per controller: a cgroup v1 hierarchy when the controller is mounted as one
 * (hybrid hosts such as ours: v2 has only hugetlb), else the unified v2 tree when its
 * cgroup.controllers lists it.
 */
export type Controller = 'memory' | 'pids' | 'cpu';
const CONTROLLERS: Controller[] = ['memory', 'pids', 'cpu'];

export interface CgroupLayout {
  v1: Partial<Record<Controller, string>>;
  /** Every v1 hierarchy mount point (runc creates the job's path in all of them). */
  v1All: string[];
  v2?: string | undefined;
  v2Controllers: Controller[];
}

export function detectCgroups(mountinfo = '/proc/self/mountinfo'): CgroupLayout {
  const layout: CgroupLayout = { v1: {}, v1All: [], v2Controllers: [] };
  for (const line of fs.readFileSync(mountinfo, 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post) continue;
    const mountPoint = pre.split(' ')[4] ?? '';
    const [fstype, , superOpts = ''] = post.split(' ');
    if (fstype === 'cgroup') {
      layout.v1All.push(mountPoint);
      for (const opt of superOpts.split(',')) {
        if ((CONTROLLERS as string[]).includes(opt)) layout.v1[opt as Controller] = mountPoint;
      }
    } else if (fstype === 'cgroup2') {
      layout.v2 = mountPoint;
      try {
        const have = fs.readFileSync(path.join(mountPoint, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
        layout.v2Controllers = CONTROLLERS.filter((c) => have.includes(c));
      } catch {
        // no controllers file: nothing usable
      }
    }
  }
  return layout;
}

/** "v1 memory, pids, cpu" / "v2 memory, pids, cpu" / what is missing. */
export function describeCgroups(layout: CgroupLayout): { usable: boolean; text: string } {
  const parts = CONTROLLERS.map((c) => (layout.v1[c] ? `${c} (v1)` : layout.v2Controllers.includes(c) ? `${c} (v2)` : `${c} MISSING`));
  return { usable: !parts.some((p) => p.includes('MISSING')), text: `cgroups: ${parts.join(', ')}` };
}

export const CGROUP_PARENT = 'sandfleet';

export class JobCgroup {
  private constructor(
    readonly layout: CgroupLayout,
    /** `sandfleet/<key>`, relative to each hierarchy root. */
    readonly relPath: string,
    readonly limits: JobLimits,
  ) {}

  static create(key: string, limits: JobLimits, layout = detectCgroups()): JobCgroup {
    const cg = new JobCgroup(layout, `${CGROUP_PARENT}/${key}`, limits);
    for (const dir of cg.dirs()) fs.mkdirSync(dir, { recursive: true });
    if (cg.usesV2()) enableV2(layout.v2!, cg.relPath, layout.v2Controllers);
    cg.applyLimits();
    return cg;
  }

  private usesV2(): boolean {
    return CONTROLLERS.some((c) => !this.layout.v1[c] && this.layout.v2Controllers.includes(c));
  }

  private dirFor(c: Controller): string | undefined {
    const v1 = this.layout.v1[c];
    if (v1) return path.join(v1, this.relPath);
    if (this.layout.v2Controllers.includes(c)) return path.join(this.layout.v2!, this.relPath);
    return undefined;
  }

  /** The distinct directories a process must join (its `cgroup.procs`). */
  dirs(): string[] {
    return [...new Set(CONTROLLERS.map((c) => this.dirFor(c)).filter((d): d is string => !!d))];
  }

  /** Files to write a pid into so that it joins the job's cgroup in every controller. */
  procsFiles(): string[] {
    return this.dirs().map((d) => path.join(d, 'cgroup.procs'));
  }

  private applyLimits(): void {
    const { memoryBytes, pids, cpus } = this.limits;
    const mem = this.dirFor('memory');
    if (mem && memoryBytes > 0) {
      if (this.layout.v1.memory) {
        write(mem, 'memory.limit_in_bytes', String(memoryBytes));
        // Without swap accounting this file is absent; the host then has no swap to escape to either.
        if (fs.existsSync(path.join(mem, 'memory.memsw.limit_in_bytes'))) write(mem, 'memory.memsw.limit_in_bytes', String(memoryBytes));
      } else {
        write(mem, 'memory.max', String(memoryBytes));
        if (fs.existsSync(path.join(mem, 'memory.swap.max'))) write(mem, 'memory.swap.max', '0');
      }
    }
    const pid = this.dirFor('pids');
    if (pid && pids > 0) write(pid, 'pids.max', String(pids));
    const cpu = this.dirFor('cpu');
    if (cpu && cpus > 0) {
      const quota = Math.max(1000, Math.round(cpus * 100_000));
      if (this.layout.v1.cpu) {
        write(cpu, 'cpu.cfs_period_us', '100000');
        write(cpu, 'cpu.cfs_quota_us', String(quota));
      } else write(cpu, 'cpu.max', `${quota} 100000`);
    }
  }

  /**
   * OOM kills so far. On v2 `memory.events` counts kills anywhere below the job's cgroup. On v1 the
   * kernel counts a kill in the *victim's* cgroup only, which for runc/crun is the per-step child
   * they delete on exit; `peakAtLimit` (the usage high-water mark reached the limit since the last
   * `resetPeak`) is then the evidence that survives, read together with a SIGKILL exit.
   */
  memoryEvents(): { oomKills: number; peakAtLimit: boolean } {
    const mem = this.dirFor('memory');
    if (!mem) return { oomKills: 0, peakAtLimit: false };
    const read = (file: string, re: RegExp) => {
      try {
        return Number(re.exec(fs.readFileSync(path.join(mem, file), 'utf8'))?.[1] ?? 0);
      } catch {
        return 0;
      }
    };
    if (this.layout.v1.memory) {
      const limit = this.limits.memoryBytes;
      const peak = Math.max(read('memory.max_usage_in_bytes', /(\d+)/), read('memory.memsw.max_usage_in_bytes', /(\d+)/));
      // Usage is charged in pages and batches: within 256 KiB of the limit counts as reaching it.
      return { oomKills: read('memory.oom_control', /oom_kill (\d+)/), peakAtLimit: limit > 0 && peak >= limit - 256 * 1024 };
    }
    return { oomKills: read('memory.events', /oom_kill (\d+)/), peakAtLimit: false };
  }

  /** Restarts the v1 usage high-water mark (before each step). */
  resetPeak(): void {
    const mem = this.layout.v1.memory ? this.dirFor('memory') : undefined;
    if (!mem) return;
    for (const f of ['memory.max_usage_in_bytes', 'memory.memsw.max_usage_in_bytes']) {
      try {
        fs.writeFileSync(path.join(mem, f), '0');
      } catch {
        // absent without swap accounting
      }
    }
  }

  /** Whether the pids limit was hit (a fork failed) since the job started. */
  pidsLimitHits(): number {
    const dir = this.dirFor('pids');
    if (!dir) return 0;
    try {
      return Number(/max (\d+)/.exec(fs.readFileSync(path.join(dir, 'pids.events'), 'utf8'))?.[1] ?? 0);
    } catch {
      return 0;
    }
  }

  /** Pids of every process in the job (recursively). */
  pids(): number[] {
    const out = new Set<number>();
    const walk = (dir: string) => {
      try {
        for (const p of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (p) out.add(Number(p));
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(dir, e.name));
      } catch {
        // gone
      }
    };
    for (const d of this.dirs()) walk(d);
    return [...out];
  }

  /** SIGKILLs every process left in the job until none remain (bounded). */
  async killAll(): Promise<void> {
    // 54 rounds: about a second in all, as before the shorter first waits.
    for (let round = 0; round < 54; round++) {
      const pids = this.pids();
      if (pids.length === 0) return;
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      // Killed processes leave the cgroup within a millisecond or two: look again soon, then less often.
      await new Promise((r) => setTimeout(r, Math.min(20, 2 ** round)));
    }
  }

  /** Kills what is left and removes the job's cgroup from every hierarchy (children first). */
  async destroy(): Promise<void> {
    await this.killAll();
    const roots = new Set([...this.layout.v1All, ...(this.layout.v2 ? [this.layout.v2] : [])]);
    for (const root of roots) await removeTree(path.join(root, this.relPath));
  }
}

function write(dir: string, file: string, value: string): void {
  fs.writeFileSync(path.join(dir, file), value);
}

function enableV2(root: string, rel: string, controllers: Controller[]): void {
  const parts = rel.split('/');
  let dir = root;
  for (const part of parts) {
    try {
      fs.writeFileSync(path.join(dir, 'cgroup.subtree_control'), controllers.map((c) => `+${c}`).join(' '));
    } catch {
      // already enabled, or not delegatable: limits then fail loudly when written
    }
    dir = path.join(dir, part);
  }
}

async function removeTree(dir: string): Promise<void> {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) await removeTree(path.join(dir, e.name));
  for (let i = 0; i < 50; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      // EBUSY while the last task is still exiting.
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/**
 * A cgroup v2 leaf whose every process is killed at once by writing `cgroup.kill` (Linux 5.14+).
 * Membership is inherited and cannot be left without write access to another cgroup, so a process
 * that calls setsid or double-forks is still found; the v2 tree needs no controllers for this.
 */
export class KillableCgroup {
  private constructor(readonly dir: string) {}

  /** Makes `sandfleet/<name>` in the v2 hierarchy, or says why that is not possible. */
  static create(name: string, layout = detectCgroups()): KillableCgroup | { unavailable: string } {
    if (!layout.v2) return { unavailable: 'no cgroup v2 hierarchy is mounted' };
    const dir = path.join(layout.v2, CGROUP_PARENT, name);
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (err) {
      return { unavailable: `cannot create ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
    }
    if (!fs.existsSync(path.join(dir, 'cgroup.kill'))) {
      fs.rmdirSync(dir);
      return { unavailable: 'the kernel has no cgroup.kill (needs Linux 5.14)' };
    }
    return new KillableCgroup(dir);
  }

  /** The leaves under `sandfleet/` in the v2 hierarchy whose names match `pattern`. */
  static existing(pattern: RegExp, layout = detectCgroups()): { name: string; cgroup: KillableCgroup }[] {
    if (!layout.v2) return [];
    const parent = path.join(layout.v2, CGROUP_PARENT);
    let names: string[];
    try {
      names = fs.readdirSync(parent, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return [];
    }
    return names.filter((n) => pattern.test(n)).map((name) => ({ name, cgroup: new KillableCgroup(path.join(parent, name)) }));
  }

  get killFile(): string {
    return path.join(this.dir, 'cgroup.kill');
  }

  get procsFile(): string {
    return path.join(this.dir, 'cgroup.procs');
  }

  /** Pids in the leaf now. */
  pids(): number[] {
    try {
      return fs.readFileSync(this.procsFile, 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  kill(): void {
    try {
      fs.writeFileSync(this.killFile, '1');
    } catch {
      // removed already
    }
  }

  /** Kills everything in the leaf and removes it once the last process has exited (bounded). */
  async destroy(): Promise<void> {
    for (let round = 0; round < 250; round++) {
      this.kill();
      try {
        fs.rmdirSync(this.dir);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        // EBUSY while the killed tasks are still exiting.
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
}
