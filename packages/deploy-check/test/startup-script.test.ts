/**
 * The executors' startup script, run for real on a fresh Debian root filesystem: rendered as
 * Terraform renders it, with the URL and sha256 of a freshly built release artifact served on
 * loopback and the URL and secret of a real local coordinator. It installs its packages from the
 * Debian mirror, the binary, executor.env and the unit; then the unit is checked with
 * systemd-analyze and the installed executor validates against the coordinator. systemd is not
 * PID 1 here, so systemctl is a stand-in that records its calls.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, readEnvironmentFile, removeTempDir } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, startCoordinatorProcess, type CoordinatorProcess } from '@sandfleet/test-helpers/coordinator';
import { sourceCommit } from '../../../scripts/release/bundle.js';
import { buildExecutorBinary, EXECUTOR_ARTIFACT } from '../../../scripts/release/executor.js';
import { PACKAGES } from '../../executor/src/cli/install.js';
import {
  checkMirror,
  DebianMirrorUnreachableError,
  ensureDebianRootfs,
  executorEnv,
  hostDebianMirror,
  renderGoogleStartupScript,
  RootfsCommandError,
  runInRootfs,
  type ExecutorInstallInputs,
  type RootfsLayers,
} from '../src/index.js';
import { DEPLOY_TERRAFORM } from './terraform-tree.js';

// What the modules' machines boot (debian-cloud/debian-13, debian-13-amd64-*).
const SUITE = 'trixie';
const RUNTIME = 'bwrap';
// What the script installs: its own packages and those of `executor install bwrap`. They are
// downloaded into the cached tree's apt cache once; each run still installs them with apt.
const PREDOWNLOAD = ['ca-certificates', 'curl', 'git', ...PACKAGES[RUNTIME]];

const SYSTEMCTL_STAND_IN = `#!/bin/sh
# Stands in for systemctl (systemd is not PID 1 here): records the call.
printf '%s\\n' "$*" >>/var/log/systemctl-calls
`;

/** Serves one file on loopback, recording the paths asked for. */
async function serveFile(urlPath: string, file: string): Promise<{ url: string; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    if (req.method !== 'GET' || req.url !== urlPath) {
      res.writeHead(404).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': fs.statSync(file).size });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${urlPath}`,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Writes a file into the overlay's upper layer, creating its directories with the given modes. */
function writeIntoLayer(upper: string, file: string, content: string, mode: number, dirModes: Record<string, number> = {}): void {
  let dir = upper;
  for (const part of path.dirname(file).split('/').filter(Boolean)) {
    dir = path.join(dir, part);
    if (!fs.existsSync(dir)) fs.mkdirSync(dir, { mode: dirModes[part] ?? 0o755 });
  }
  fs.writeFileSync(path.join(upper, file), content, { mode });
  fs.chmodSync(path.join(upper, file), mode);
}

/**
 * `systemd-analyze verify` by the host's systemd of a unit in the tree, with its drop-ins and the
 * binaries it names read from the tree; `edit` (a sed script) changes a copy of the unit first.
 * A minbase tree has no systemd, so the units every Debian machine's systemd brings
 * (sysinit.target, network-online.target…) are the host's, mounted into it. Returns the output
 * and `exit <status>`.
 */
function verifyInTree(layers: RootfsLayers, unit: string, edit?: string): Promise<string> {
  const target = edit === undefined ? unit : unit.replace(/\.service$/, '-edited.service');
  const script = [
    'set -e',
    'mkdir -p "$ROOTFS/usr/lib/systemd/system"',
    'mount --bind -o ro /usr/lib/systemd/system "$ROOTFS/usr/lib/systemd/system"',
    ...(edit === undefined ? [] : ['sed "$3" "$ROOTFS$1" >"$ROOTFS$2"', 'if [ -d "$ROOTFS$1.d" ]; then cp -r "$ROOTFS$1.d" "$ROOTFS$2.d"; fi']),
    'status=0; systemd-analyze verify --man=no --root="$ROOTFS" "$2" 2>&1 || status=$?',
    'echo "exit $status"',
  ].join('\n');
  return runInRootfs(layers, ['sh', '-c', script, 'sh', unit, target, edit ?? ''], { where: 'host' }).then((out) => out.trim());
}

describe('the executor startup script on a fresh Debian root filesystem', { timeout: 900_000 }, () => {
  const mirror = hostDebianMirror();
  let skipReason: string | undefined;
  let work: string;
  let lower: string;
  let layers: RootfsLayers;
  let upper: string;
  let coordinator: CoordinatorProcess;
  let artifact: Awaited<ReturnType<typeof serveFile>>;
  let artifactSha256: string;
  let inputs: ExecutorInstallInputs;
  let scriptOutput: string;
  let tampered: RootfsLayers;
  let tamperedResult: { failed: boolean; output: string };

  before(async () => {
    try {
      await checkMirror(mirror, SUITE);
    } catch (err) {
      if (!(err instanceof DebianMirrorUnreachableError)) throw err;
      skipReason = `the Debian mirror ${mirror} is unreachable, so no root filesystem can be built: ${err.message}`;
      process.stderr.write(`skipping: ${skipReason}\n`);
      return;
    }
    const rootfs = await ensureDebianRootfs({ suite: SUITE, mirror, predownload: PREDOWNLOAD });
    if (rootfs.builtMs !== undefined) process.stderr.write(`built the Debian ${SUITE} root filesystem ${rootfs.dir} in ${Math.round(rootfs.builtMs / 1000)} s\n`);

    work = makeTempDir('sandfleet-startup-script-');
    const binary = path.join(work, EXECUTOR_ARTIFACT);
    await buildExecutorBinary({ outFile: binary, commit: sourceCommit() });
    artifactSha256 = createHash('sha256').update(fs.readFileSync(binary)).digest('hex');
    artifact = await serveFile(`/releases/${EXECUTOR_ARTIFACT}`, binary);
    coordinator = await startCoordinatorProcess('pglite');

    inputs = {
      frontend_url: coordinator.url,
      frontend_password: ACCESS_TOKEN,
      queue_name: 'batches',
      queue_names: null,
      maximum_runtime_per_job: '45m',
      maximum_num_jobs: 2,
      num_total_jobs: 200,
      max_active_time: '12h',
      job_num_cpus: '4',
      job_memory: '12GB',
      firecracker_disk_space: '20GB',
      use_firecracker: true,
      docker_registry_mirror_urls: ['https://mirror.gcr.io', ''],
      docker_registry_mirror_node_exporter_url: '',
      // Quotes, $, ` and \ must reach executor.env as they are, through the script and its sh.
      docker_auth_config: '{"auths": {\n  "registry.example.com": {"auth": "dTpw", "identitytoken": "$(reboot) `id` \\\\ \\" ${HOME}"}\n}}',
      private_ca_cert: '',
      executor_binary_url: artifact.url,
      executor_binary_sha256: artifactSha256,
      runtime: RUNTIME,
      drain_timeout_seconds: 600,
    };
    lower = rootfs.dir;
    layers = freshMachine('machine', inputs);
    upper = layers.upper!;
    // A second machine, given a sha256 the artifact does not have, boots alongside.
    tampered = freshMachine('tampered', { ...inputs, executor_binary_sha256: 'f'.repeat(64) });
    const tamperedRun = runInRootfs(tampered, ['bash', '/root/startup-script.sh']).then(
      (output) => ({ failed: false, output }),
      (err: unknown) => ({ failed: err instanceof RootfsCommandError, output: err instanceof Error ? err.message : String(err) }),
    );
    scriptOutput = await runInRootfs(layers, ['bash', '/root/startup-script.sh']);
    tamperedResult = await tamperedRun;
  });

  /** A fresh overlay of the tree holding the startup script rendered from `machineInputs` and the systemctl stand-in. */
  const freshMachine = (name: string, machineInputs: ExecutorInstallInputs): RootfsLayers => {
    const machine = { lower, upper: path.join(work, name, 'upper'), work: path.join(work, name, 'work') };
    fs.mkdirSync(machine.upper, { recursive: true });
    fs.mkdirSync(machine.work);
    writeIntoLayer(machine.upper, 'root/startup-script.sh', renderGoogleStartupScript(DEPLOY_TERRAFORM, machineInputs, { useLocalSsd: false }), 0o700, { root: 0o700 });
    writeIntoLayer(machine.upper, 'usr/local/sbin/systemctl', SYSTEMCTL_STAND_IN, 0o755);
    return machine;
  };

  after(async () => {
    await artifact?.close();
    await coordinator?.stop();
    if (work) removeTempDir(work);
  });

  it('downloads the artifact and installs it as /usr/local/bin/executor, unchanged', (t) => {
    if (skipReason) return t.skip(skipReason);
    // Once by each machine.
    assert.deepEqual(artifact.requests, [`/releases/${EXECUTOR_ARTIFACT}`, `/releases/${EXECUTOR_ARTIFACT}`], scriptOutput);
    const installed = path.join(upper, 'usr/local/bin/executor');
    const stat = fs.statSync(installed);
    assert.equal(stat.mode & 0o7777, 0o755);
    assert.equal(stat.uid, 0);
    assert.equal(createHash('sha256').update(fs.readFileSync(installed)).digest('hex'), artifactSha256);
  });

  it('refuses an artifact that does not match executor_binary_sha256, installing nothing', (t) => {
    if (skipReason) return t.skip(skipReason);
    assert.ok(tamperedResult.failed, tamperedResult.output);
    assert.match(tamperedResult.output, /the executor artifact from http:\/\/127\.0\.0\.1:\d+\/releases\/executor-linux-amd64 does not match executor_binary_sha256/);
    for (const file of ['usr/local/bin/executor', 'etc/systemd/system/executor.env', 'etc/systemd/system/executor.service', 'var/log/systemctl-calls']) {
      assert.ok(!fs.existsSync(path.join(tampered.upper!, file)), `${file} must not exist`);
    }
  });

  it('writes executor.env with the module\'s values, readable by root alone', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const envFile = path.join(upper, 'etc/systemd/system/executor.env');
    assert.equal(fs.statSync(envFile).mode & 0o777, 0o600);
    const expected = Object.fromEntries(Object.entries(executorEnv(inputs)).filter(([, value]) => value !== ''));
    const written = await readEnvironmentFile(envFile);
    assert.deepEqual(written, expected);
    assert.deepEqual(JSON.parse(written.EXECUTOR_DOCKER_AUTH_CONFIG!), JSON.parse(inputs.docker_auth_config));
  });

  it('writes a unit and drain drop-in that systemd-analyze verify accepts', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const unit = fs.readFileSync(path.join(upper, 'etc/systemd/system/executor.service'), 'utf8');
    assert.match(unit, /^ExecStart=\/usr\/local\/bin\/executor run$/m);
    assert.match(unit, /^EnvironmentFile=\/etc\/systemd\/system\/executor\.env$/m);
    assert.match(fs.readFileSync(path.join(upper, 'etc/systemd/system/executor.service.d/50-drain.conf'), 'utf8'), /^TimeoutStopSec=600$/m);
    assert.equal(await verifyInTree(layers, '/etc/systemd/system/executor.service'), 'exit 0');
    // The same check reports a misspelt key, and an ExecStart the tree does not have.
    const misspelt = await verifyInTree(layers, '/etc/systemd/system/executor.service', 's/^KillMode=/KilMode=/');
    assert.match(misspelt, /Unknown key 'KilMode' in section \[Service\]/);
    const missing = await verifyInTree(layers, '/etc/systemd/system/executor.service', 's|/usr/local/bin/executor|/usr/local/bin/no-executor|');
    assert.match(missing, /no-executor/);
    assert.doesNotMatch(missing, /exit 0/);
  });

  it('reloads systemd and enables and starts the executor', (t) => {
    if (skipReason) return t.skip(skipReason);
    assert.deepEqual(fs.readFileSync(path.join(upper, 'var/log/systemctl-calls'), 'utf8').trim().split('\n'), ['daemon-reload', 'enable --now executor']);
  });

  it('leaves an executor that validates against the coordinator with the env file loaded', async (t) => {
    if (skipReason) return t.skip(skipReason);
    const output = await runInRootfs(layers, ['bash', '-c', 'set -a; . /etc/systemd/system/executor.env; set +a; executor validate 2>&1; echo "exit $?"']);
    assert.match(output, /exit 0\s*$/, output);
    assert.match(output, new RegExp(`✓ authorized with ${coordinator.url}`), output);
    assert.match(output, /✓ runtime bwrap/, output);
  });
});

describe('the Debian mirror of the root filesystem', () => {
  it('is the host\'s first Debian archive, from deb822 or one-line sources', () => {
    const dir = makeTempDir('sandfleet-apt-sources-', { untilFileEnds: true });
    fs.mkdirSync(path.join(dir, 'sources.list.d'));
    fs.writeFileSync(path.join(dir, 'sources.list.d/debian.sources'), [
      'Types: deb', 'URIs: http://mirror.example.org/debian-security', 'Suites: bookworm-security', '',
      'Types: deb', 'URIs: https://mirror.example.org/debian/', 'Suites: bookworm', '',
    ].join('\n'));
    assert.equal(hostDebianMirror(dir), 'https://mirror.example.org/debian');
    fs.writeFileSync(path.join(dir, 'sources.list'), 'deb [arch=amd64] http://other.example.org/debian bookworm main\n');
    assert.equal(hostDebianMirror(dir), 'http://other.example.org/debian');
  });

  it('is reported unreachable (the reason the startup script test skips) when nothing answers', async () => {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await assert.rejects(checkMirror(`http://127.0.0.1:${port}/debian`, SUITE), (err: Error) => err instanceof DebianMirrorUnreachableError && err.message.startsWith(`cannot fetch http://127.0.0.1:${port}/debian/dists/${SUITE}/Release: `));
  });
});
