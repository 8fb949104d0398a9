import type { DockerCli } from './cli.js';
import { SandfleetError } from '@sandfleet/protocol';

/** What the docker runtime needs to know about the daemon it talks to. */
export interface DockerDaemon {
  version: string;
  /**
   * Host uid/gid of container root when the daemon remaps users (`--userns-remap`); undefined when
   * container root is host root.
   */
  remap: { uid: number; gid: number } | undefined;
  /** Storage driver (`overlay2`, `btrfs`, …). */
  storageDriver: string;
  /** Where the daemon keeps containers and images (`<data-root>/<uid>.<gid>` when remapping). */
  rootDir: string;
}

export class DockerDaemonError extends SandfleetError {
  constructor(message: string) {
    super(message);
  }
}

interface DockerInfo {
  ServerVersion?: string;
  SecurityOptions?: string[] | null;
  DockerRootDir?: string;
  Driver?: string;
}

/** `docker info` says `name=userns` among its security options when the daemon remaps users. */
export function usernsRemapped(securityOptions: readonly string[] | null | undefined): boolean {
  return (securityOptions ?? []).some((o) => o.split(',').includes('name=userns'));
}

/**
 * The host ids of container root, from the daemon's root directory: with `--userns-remap` dockerd
 * keeps its state in `<data-root>/<uid>.<gid>`, where uid and gid start the remap user's ranges in
 * /etc/subuid and /etc/subgid. (`docker info` shows no ranges; this directory name is their only
 * trace that does not require reading the daemon's host files.)
 */
export function remapFromRootDir(rootDir: string): { uid: number; gid: number } | undefined {
  const m = /\/(\d+)\.(\d+)\/?$/.exec(rootDir);
  return m ? { uid: Number(m[1]), gid: Number(m[2]) } : undefined;
}

/** Asks the daemon; throws DockerCommandError when no daemon answers. */
export async function inspectDaemon(cli: DockerCli): Promise<DockerDaemon> {
  const info = JSON.parse(await cli.must(['info', '--format', '{{json .}}'])) as DockerInfo;
  const rootDir = info.DockerRootDir ?? '';
  let remap: DockerDaemon['remap'];
  if (usernsRemapped(info.SecurityOptions)) {
    remap = remapFromRootDir(rootDir);
    if (!remap) throw new DockerDaemonError(`the Docker daemon remaps users, but its root directory ${rootDir} does not say to which ids (expected <data-root>/<uid>.<gid>)`);
  }
  return { version: info.ServerVersion ?? 'unknown', remap, storageDriver: info.Driver ?? '', rootDir };
}

/** One line for probe reasons and `executor install docker`. */
export function describeDaemon(d: DockerDaemon): string {
  const users = d.remap
    ? `userns-remap on (container root is host uid ${d.remap.uid})`
    : 'no userns-remap: container root would be host root, so steps that would run as root are refused';
  return `Docker ${d.version}, ${users}, storage driver ${d.storageDriver}`;
}
