/**
 * A private dockerd for the docker runtime's tests. The images, registry and workspaces every
 * sandbox test uses come from @sandfleet/test-helpers.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { capture, runProcess } from '../../src/process/run.js';
import { DockerCli } from '../../src/sandbox/docker/cli.js';
import { inspectDaemon } from '../../src/sandbox/docker/daemon.js';
import { ensureRemapUser, REMAP_USER } from '../../src/sandbox/docker/userns.js';

const PATH_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };

export interface TestDockerd {
  /** `unix:///…/docker.sock`, for DOCKER_HOST. */
  host: string;
  /** Host uid/gid of container root (userns-remap), or undefined when container root is host root. */
  remap: { uid: number; gid: number } | undefined;
  stop(): Promise<void>;
}

/**
 * Starts a private dockerd (temporary data-root, exec-root and socket) that touches no host
 * networking: no bridge, no iptables, no forwarding, no masquerade. With `usernsRemap` (the
 * default) it maps container ids onto the `dockremap` user's sub-id ranges, which are created
 * first if missing, exactly as `executor install docker` does. Fails if dockerd is missing.
 */
export async function startDockerd(options: { usernsRemap?: boolean } = {}): Promise<TestDockerd> {
  const usernsRemap = options.usernsRemap ?? true;
  if (usernsRemap) await ensureRemapUser({ dryRun: false });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-dockerd-'));
  // The remapped root must be able to traverse to its own <data-root>/<uid>.<gid>.
  await fs.chmod(dir, 0o711);
  const host = `unix://${dir}/docker.sock`;
  await fs.writeFile(`${dir}/daemon.json`, '{}\n');
  const controller = new AbortController();
  const log: Buffer[] = [];
  const exited = runProcess({
    argv: ['dockerd', '--data-root', `${dir}/data`, '--exec-root', `${dir}/exec`, '--pidfile', `${dir}/dockerd.pid`, '-H', host,
      '--bridge=none', '--iptables=false', '--ip6tables=false', '--ip-forward=false', '--ip-masq=false', '--userland-proxy=false',
      // An empty config file: the host's /etc/docker/daemon.json (which may set userns-remap too) is not ours to read.
      '--config-file', `${dir}/daemon.json`,
      ...(usernsRemap ? [`--userns-remap=${REMAP_USER}`] : [])],
    env: PATH_ENV,
    signal: controller.signal,
    killGraceMs: 15_000,
    onStdout: (c) => log.push(c),
    onStderr: (c) => log.push(c),
  });
  let done = false;
  void exited.then(() => (done = true), () => (done = true));
  const stop = async () => {
    controller.abort();
    await exited.catch(() => {});
    await capture(['umount', '-R', `${dir}/data`], { env: PATH_ENV });
    await fs.rm(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    if (done) {
      await stop();
      throw new Error(`dockerd exited: ${Buffer.concat(log).toString().slice(-2000)}`);
    }
    const r = await capture(['docker', 'version', '--format', '{{.Server.Version}}'], { env: { ...PATH_ENV, DOCKER_HOST: host } });
    if (r.exitCode === 0) break;
    if (i > 300) {
      await stop();
      throw new Error('dockerd did not answer within 30 s');
    }
    await new Promise((r2) => setTimeout(r2, 100));
  }
  const { remap } = await inspectDaemon(new DockerCli(host));
  if (usernsRemap && !remap) {
    await stop();
    throw new Error('dockerd was started with --userns-remap but does not report it');
  }
  return { host, remap, stop };
}
