import fs from 'node:fs';
import path from 'node:path';
import { ImageStore } from '../../image/pull.js';
import { HostUplink, type Uplink } from '../../network/uplink.js';
import type { Availability, HostEnvironment, RuntimeConfig } from '../runtime.js';

export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The host environment of a runtime built without the executor's configuration (tests, benches):
 * the system PATH, no HOME, docker's default socket, and no wiring of job networks to the host.
 */
const DEFAULT_HOST: HostEnvironment = { path: SYSTEM_PATH, home: undefined, dockerHost: undefined, underTestRunner: true };

/** What an image runtime needs besides its config; tests inject a test uplink here. */
export interface RuntimeDeps {
  config: RuntimeConfig;
  images: ImageStore;
  /** Where `public` jobs' traffic goes. Default: the host's default route (HostUplink). */
  uplink: Uplink;
  /** The executor's PATH, HOME and DOCKER_HOST (DEFAULT_HOST unless given). */
  host: HostEnvironment;
  /** The seccomp profile bwrap and runc/crun filter with (shared/seccomp.ts SECCOMP_PROFILE). */
  seccompProfile?: string;
}

export function makeRuntimeDeps(config: RuntimeConfig, overrides: Partial<Omit<RuntimeDeps, 'config'>> = {}): RuntimeDeps {
  const host = overrides.host ?? DEFAULT_HOST;
  return {
    config,
    images: overrides.images ?? new ImageStore(config.stateDir, config.registryMirrorUrls, config.imageStore),
    uplink: overrides.uplink ?? new HostUplink(undefined, host.underTestRunner),
    host,
    ...(overrides.seccompProfile ? { seccompProfile: overrides.seccompProfile } : {}),
  };
}

/** Absolute path of `name` on the system PATH, or undefined. */
export function findBinary(name: string): string | undefined {
  for (const dir of SYSTEM_PATH.split(':')) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/**
 * Host requirements every image runtime shares: root (mounts, cgroups, netns), overlayfs, user
 * namespaces, the helper binaries, and a memory+pids+cpu cgroup controller set.
 */
export function checkHostBasics(extraBinaries: string[], describeCgroupsText: { usable: boolean; text: string }): Availability | undefined {
  if (process.getuid?.() !== 0) return { available: false, reason: 'the executor must run as root to create sandboxes (mounts, cgroups, network namespaces)' };
  const missing = ['ip', 'nft', 'mount', 'mkfs.ext4', 'nsenter', 'setpriv', ...extraBinaries].filter((b) => !findBinary(b));
  if (missing.length) return { available: false, reason: `missing ${missing.join(', ')} (executor install)` };
  const filesystems = fs.readFileSync('/proc/filesystems', 'utf8');
  if (!/\toverlay\n/.test(filesystems)) return { available: false, reason: 'the kernel has no overlayfs' };
  try {
    if (Number(fs.readFileSync('/proc/sys/user/max_user_namespaces', 'utf8')) === 0) return { available: false, reason: 'user namespaces are disabled (user.max_user_namespaces = 0)' };
  } catch {
    return { available: false, reason: 'the kernel has no user namespaces' };
  }
  if (!describeCgroupsText.usable) return { available: false, reason: `cgroup layout unusable: ${describeCgroupsText.text}` };
  return undefined;
}
