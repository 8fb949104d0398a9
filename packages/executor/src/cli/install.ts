import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { installDefaults, type Env } from '../config.js';
import { capture, runProcess } from '../process/run.js';
import { detectCgroups } from '../sandbox/shared/cgroup.js';
import { DockerCli } from '../sandbox/docker/cli.js';
import { describeDaemon, inspectDaemon, type DockerDaemon } from '../sandbox/docker/daemon.js';
import { configureDaemonJson, DAEMON_JSON, ensureRemapUser, REMAP_USER } from '../sandbox/docker/userns.js';
import { SYSTEM_PATH } from '../sandbox/shared/host.js';
import { installExecutorSystemd } from './executor-unit.js';
import { SYSTEMD_UNIT_DIR } from './systemd.js';
import { loadSeccompProfile, SECCOMP_BPF_PACKAGE, SECCOMP_PACKAGE, SECCOMP_PROFILE } from '../sandbox/shared/seccomp.js';
import { VM_PACKAGES, vmImageInstallSteps } from '../sandbox/vm/install.js';

/**
 * `executor install [runtime|all]`: installs the Debian packages a sandbox runtime needs and sets
 * up the host, printing every step. Idempotent: installed packages and finished set-up steps are
 * reported as already done. Unlike Sourcegraph's `executor install` (which downloads ignite and
 * CNI releases), everything comes from apt.
 */
export const INSTALL_TARGETS = ['bwrap', 'oci', 'gvisor', 'docker', 'network', 'vm-image'] as const;
export type InstallTarget = (typeof INSTALL_TARGETS)[number];

/** Packages every image runtime needs: namespaces, firewall, loop disks, uid tools. */
const COMMON = ['iproute2', 'nftables', 'iptables', 'util-linux', 'mount', 'e2fsprogs', 'uidmap', 'tar'];

/** The seccomp allow-list (containers/common's profile) bwrap and runc/crun run steps under. */
const SECCOMP = [SECCOMP_PACKAGE];

export const PACKAGES: Record<InstallTarget, string[]> = {
  network: COMMON,
  // bwrap takes a compiled BPF program: libseccomp's Python binding compiles the profile.
  bwrap: [...COMMON, ...SECCOMP, SECCOMP_BPF_PACKAGE, 'bubblewrap'],
  oci: [...COMMON, ...SECCOMP, 'runc', 'crun'],
  gvisor: [...COMMON, 'runsc'],
  docker: [...COMMON, 'docker.io'],
  // The microVM guest (work in progress, not yet a runtime): QEMU; the image is built from downloads.
  'vm-image': VM_PACKAGES,
};

export interface InstallStep {
  title: string;
  /** Returns a short result ("installed", "already done"). */
  run: () => Promise<string>;
}

export interface InstallOptions {
  stateDir: string;
  /** The Docker daemon to check (DOCKER_HOST); undefined is docker's default socket. */
  dockerHost?: string | undefined;
  dryRun: boolean;
  write: (line: string) => void;
}

const ENV = { PATH: SYSTEM_PATH, DEBIAN_FRONTEND: 'noninteractive' };

async function installed(pkg: string): Promise<boolean> {
  const r = await capture(['dpkg-query', '-W', '-f=${Status}', pkg], { env: ENV });
  return r.exitCode === 0 && r.stdout.includes('install ok installed');
}

/** The ordered steps for `targets`. */
export function planInstall(targets: InstallTarget[], options: InstallOptions): InstallStep[] {
  const packages = [...new Set(targets.flatMap((t) => PACKAGES[t]))];
  const steps: InstallStep[] = [
    {
      title: `apt packages: ${packages.join(' ')}`,
      run: async () => {
        const missing: string[] = [];
        for (const p of packages) if (!(await installed(p))) missing.push(p);
        if (missing.length === 0) return 'already installed';
        if (options.dryRun) return `would install ${missing.join(' ')}`;
        const stream = { onStdout: (c: Buffer) => options.write(c.toString().trimEnd()), onStderr: (c: Buffer) => options.write(c.toString().trimEnd()) };
        const update = await runProcess({ argv: ['apt-get', 'update'], env: ENV, ...stream });
        if (update.exitCode !== 0) throw new Error(`apt-get update failed (exit ${update.exitCode})`);
        const r = await runProcess({ argv: ['apt-get', 'install', '-y', '--no-install-recommends', ...missing], env: ENV, ...stream });
        if (r.exitCode !== 0) throw new Error(`apt-get install failed (exit ${r.exitCode})`);
        return `installed ${missing.join(' ')}`;
      },
    },
    {
      title: `state directory ${options.stateDir} (0711: sandboxes run as unprivileged uids and must reach their mounts)`,
      run: async () => {
        if (fs.existsSync(options.stateDir) && (fs.statSync(options.stateDir).mode & 0o711) === 0o711) return 'already done';
        if (options.dryRun) return 'would create';
        fs.mkdirSync(options.stateDir, { recursive: true, mode: 0o711 });
        fs.chmodSync(options.stateDir, 0o711);
        return 'created';
      },
    },
    {
      title: 'kernel features: user namespaces, overlayfs, loop devices',
      run: async () => {
        const problems: string[] = [];
        if (Number(fs.readFileSync('/proc/sys/user/max_user_namespaces', 'utf8')) === 0) problems.push('user.max_user_namespaces is 0 (sysctl -w user.max_user_namespaces=15000)');
        if (!/\toverlay\n/.test(fs.readFileSync('/proc/filesystems', 'utf8'))) problems.push('no overlayfs (modprobe overlay)');
        if (!fs.existsSync('/dev/loop-control')) problems.push('no /dev/loop-control (modprobe loop)');
        if (problems.length) throw new Error(problems.join('; '));
        return 'ok';
      },
    },
  ];
  if (targets.includes('bwrap') || targets.includes('oci')) {
    steps.push({
      title: `seccomp allow-list ${SECCOMP_PROFILE} (bwrap and runc/crun are unavailable without it)`,
      run: async () => {
        if (options.dryRun && !fs.existsSync(SECCOMP_PROFILE)) return `would be installed by ${SECCOMP_PACKAGE}`;
        loadSeccompProfile();
        return 'present';
      },
    });
  }
  if (targets.includes('oci')) {
    steps.push({
      title: 'crun on hybrid cgroups: move the hugetlb controller from cgroup v2 to a v1 hierarchy',
      run: async () => {
        const layout = detectCgroups();
        if (!layout.v2 || layout.v1All.length === 0) return 'not needed (not a hybrid cgroup host)';
        const controllers = fs.readFileSync(`${layout.v2}/cgroup.controllers`, 'utf8').trim();
        if (!controllers) return 'already done (cgroup v2 has no controllers)';
        if (controllers !== 'hugetlb') return `skipped: v2 holds ${controllers}, not just hugetlb; crun cannot be used here, runc will be`;
        if (options.dryRun) return 'would mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb';
        fs.mkdirSync('/sys/fs/cgroup/hugetlb', { recursive: true });
        const r = await capture(['mount', '-t', 'cgroup', '-o', 'hugetlb', 'cgroup', '/sys/fs/cgroup/hugetlb'], { env: ENV });
        if (r.exitCode !== 0) throw new Error(`mount hugetlb: ${r.stderr.trim()}`);
        return 'mounted /sys/fs/cgroup/hugetlb (not persistent: repeat after a reboot, e.g. from the unit that starts the executor)';
      },
    });
  }
  if (targets.includes('docker')) {
    steps.push(
      {
        title: `userns-remap user ${REMAP_USER} with ranges in /etc/subuid and /etc/subgid (container root becomes an unprivileged host uid)`,
        run: () => ensureRemapUser({ dryRun: options.dryRun }),
      },
      {
        title: `${DAEMON_JSON}: "userns-remap": "${REMAP_USER}"`,
        run: () => configureDaemonJson({ dryRun: options.dryRun }),
      },
      {
        title: 'docker daemon',
        run: async () => {
          let daemon: DockerDaemon;
          try {
            daemon = await inspectDaemon(new DockerCli(options.dockerHost));
          } catch {
            return 'not running: start dockerd (it reads daemon.json; do not also pass --userns-remap); the docker runtime is never chosen automatically';
          }
          const disk = daemon.storageDriver === 'overlay2' ? '' : `; WARNING: storage driver ${daemon.storageDriver}: jobs with a disk limit need overlay2`;
          if (daemon.remap) return `running: ${describeDaemon(daemon)}${disk}`;
          return `running without userns-remap: restart dockerd so it reads ${DAEMON_JSON} (e.g. service docker restart); until then the docker runtime refuses steps that would run as root${disk}`;
        },
      },
    );
  }
  if (targets.includes('vm-image')) steps.push(...vmImageInstallSteps(options.stateDir, options.dryRun));
  return steps;
}

export async function runInstall(targets: InstallTarget[], options: InstallOptions): Promise<boolean> {
  let ok = true;
  for (const step of planInstall(targets, options)) {
    options.write(`→ ${step.title}`);
    try {
      options.write(`  ${await step.run()}`);
    } catch (err) {
      ok = false;
      options.write(`  FAILED: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return ok;
}

/** `env`: the executor's environment, read by the caller (defaults, and what `install systemd` keeps). */
export function registerInstallCommand(program: Command, env: Env): void {
  const defaults = installDefaults(env);
  program
    .command('install')
    .description(`install the packages a sandbox runtime needs and set up the host (${INSTALL_TARGETS.join(', ')}, all); or the systemd unit (systemd)`)
    .argument('[what]', 'runtime to install for, all, or systemd', 'all')
    .option('--state-dir <dir>', 'state directory to create', defaults.stateDir)
    .option('--unit-dir <dir>', 'systemd: where executor.service and executor.env go', SYSTEMD_UNIT_DIR)
    .option('--exec <path>', 'systemd: the executor binary ExecStart runs (default: this one)')
    .option('--dry-run', 'print what would be done without changing anything')
    .action(async (what: string, opts: { stateDir: string; unitDir: string; exec?: string; dryRun?: boolean }) => {
      if (what === 'systemd') {
        process.exitCode = installExecutorSystemd(env, {
          unitDir: opts.unitDir,
          ...(opts.exec ? { exec: [path.resolve(opts.exec)] } : {}),
          dryRun: opts.dryRun === true,
          write: (l) => process.stdout.write(`${l}\n`),
          writeError: (l) => process.stderr.write(`${l}\n`),
        });
        return;
      }
      const targets: InstallTarget[] = what === 'all' ? ['bwrap', 'oci', 'gvisor', 'network'] : (INSTALL_TARGETS as readonly string[]).includes(what) ? [what as InstallTarget] : [];
      if (targets.length === 0) {
        process.stderr.write(`unknown install target "${what}"; use one of ${INSTALL_TARGETS.join(', ')}, all, systemd\n`);
        process.exitCode = 1;
        return;
      }
      const ok = await runInstall(targets, { stateDir: opts.stateDir, dockerHost: defaults.dockerHost, dryRun: opts.dryRun === true, write: (l) => process.stdout.write(`${l}\n`) });
      process.exitCode = ok ? 0 : 1;
    });
}
