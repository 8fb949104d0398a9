import { ID_RANGE, ID_SHIFT } from '../../image/ids.js';
import type { JobResources, StepLaunch } from './image-sandbox.js';

/** Docker's default capability set; given only to image root (and only inside its user namespace). */
const ROOT_CAPS = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE'];

/**
 * A deny-list seccomp profile: the default action allows, and the syscalls a CI step has no
 * business making — kernel keyrings, BPF, perf, module and kexec loading, mounts and namespace
 * games, io_uring, clock setting, swap, reboot — fail with EPERM. `clone` with CLONE_NEWUSER is
 * refused and `clone3` reports ENOSYS so libc falls back to `clone`, where the flag can be checked.
 * Docker's profile is an allow-list and stricter; this one trades some strictness for staying
 * small and obviously correct.
 */
export function seccompProfile(): object {
  const denied = [
    'add_key', 'keyctl', 'request_key', 'bpf', 'perf_event_open', 'userfaultfd', 'kexec_load', 'kexec_file_load',
    'init_module', 'finit_module', 'delete_module', 'open_by_handle_at', 'mount', 'umount2', 'pivot_root',
    'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr', 'setns', 'unshare',
    'swapon', 'swapoff', 'reboot', 'acct', 'quotactl', 'iopl', 'ioperm', 'syslog', 'vhangup', 'clock_settime',
    'clock_adjtime', 'settimeofday', 'adjtimex', 'lookup_dcookie', 'nfsservctl', 'io_uring_setup', 'io_uring_enter',
    'io_uring_register', 'personality', 'uselib', 'ustat', 'sysfs', '_sysctl', 'create_module', 'get_kernel_syms',
    'query_module', 'kcmp', 'process_vm_writev', 'name_to_handle_at',
  ];
  const CLONE_NEWUSER = 0x10000000;
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      { names: denied, action: 'SCMP_ACT_ERRNO', errnoRet: 1 },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      { names: ['clone'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, args: [{ index: 0, value: CLONE_NEWUSER, valueTwo: CLONE_NEWUSER, op: 'SCMP_CMP_MASKED_EQ' }] },
    ],
  };
}

export interface SpecOptions {
  /** Map image ids onto ID_SHIFT.. with a user namespace (runc, crun). */
  userNamespace: boolean;
  seccomp: boolean;
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
      ...(options.seccomp ? { seccomp: seccompProfile() } : {}),
    },
  };
}
