import { ID_RANGE, ID_SHIFT } from '../../image/ids.js';
import { resolveSeccomp, type SeccompProfile } from '../shared/seccomp.js';
import type { JobResources, StepLaunch } from './image-sandbox.js';

/** Docker's default capability set; given only to image root (and only inside its user namespace). */
const ROOT_CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'];

export interface SpecOptions {
  /** Map image ids onto ID_SHIFT.. with a user namespace (runc, crun). */
  userNamespace: boolean;
  /**
   * The seccomp allow-list (shared/seccomp.ts), resolved for the step's capabilities; false for
   * gVisor, whose own kernel serves the syscalls.
   */
  seccomp: SeccompProfile | false;
  /** cgroupsPath; below the job's cgroup so the job's limits apply. */
  cgroupsPath: string;
  /** Put pids and cpu limits into linux.resources as well (memory stays on the job's cgroup). */
  resources: boolean;
}

/** The OCI runtime spec (config.json) of one step. */
export function buildSpec(job: JobResources, l: StepLaunch, options: SpecOptions): object {
  const { limits } = job;
  const caps = l.user.uid === 0 ? ROOT_CAPS : [];
  const mappings = [{ containerID: 0, hostID: ID_SHIFT, size: ID_RANGE }];
  const resources: Record<string, unknown> = { devices: [{ allow: false, access: 'rwm' }] };
  if (options.resources) {
    if (limits.pids > 0) resources.pids = { limit: limits.pids };
    if (limits.cpus > 0) resources.cpu = { quota: Math.round(limits.cpus * 100_000), period: 100_000 };
  }
  const tmpSize = limits.memoryBytes > 0 ? [`size=${limits.memoryBytes}`] : [];
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: l.user.uid, gid: l.user.gid, additionalGids: [] },
      args: ['/bin/sh', l.script],
      env: l.env,
      cwd: l.cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 4096, soft: 4096 }],
      noNewPrivileges: true,
    },
    root: { path: l.root, readonly: false },
    hostname: 'sandfleet',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/data', type: 'bind', source: job.fs.dataDir, options: ['rbind', 'rw', 'nosuid', 'nodev'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', ...tmpSize] },
    ],
    linux: {
      ...(options.userNamespace ? { uidMappings: mappings, gidMappings: mappings } : {}),
      namespaces: [
        { type: 'pid' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
        ...(options.userNamespace ? [{ type: 'user' }, { type: 'cgroup' }] : []),
        { type: 'network', path: job.network.netnsPath },
      ],
      cgroupsPath: options.cgroupsPath,
      resources,
      maskedPaths: ['/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      ...(options.seccomp ? { seccomp: resolveSeccomp(options.seccomp, { caps }) } : {}),
    },
  };
}
