/**
 * The docker runtime's host-side logic that needs no daemon: how it reads `docker info`, which
 * daemons it refuses, how failures are worded, and the userns-remap set-up `executor install
 * docker` (and the docker test fixture) perform — on temporary files, never the host's /etc.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DockerCommandError, describeArgv } from '../src/sandbox/docker/cli.js';
import { describeDaemon, remapFromRootDir, usernsRemapped, type DockerDaemon } from '../src/sandbox/docker/daemon.js';
import { configureDaemonJson, ensureSubIds, freeStart, parseSubIds, type SubIdFiles } from '../src/sandbox/docker/userns.js';
import { unusableDaemon } from '../src/sandbox/docker/docker.js';

describe('docker daemon facts', () => {
  it('sees userns-remap in docker info\'s security options', () => {
    assert.equal(usernsRemapped(['name=seccomp,profile=default', 'name=userns']), true);
    assert.equal(usernsRemapped(['name=apparmor', 'name=seccomp,profile=default']), false);
    assert.equal(usernsRemapped(['name=usernsx']), false);
    assert.equal(usernsRemapped(null), false);
  });

  it('reads container root\'s host ids from the remapped root directory', () => {
    assert.deepEqual(remapFromRootDir('/var/lib/docker/100000.100000'), { uid: 100000, gid: 100000 });
    assert.deepEqual(remapFromRootDir('/srv/docker/231072.231072/'), { uid: 231072, gid: 231072 });
    assert.equal(remapFromRootDir('/var/lib/docker'), undefined);
  });

  it('refuses daemons whose remap ranges differ, or that cannot put a layer on the job disk', () => {
    const daemon: DockerDaemon = { version: '20.10.24', remap: { uid: 100000, gid: 100000 }, storageDriver: 'overlay2', rootDir: '/var/lib/docker/100000.100000' };
    assert.equal(unusableDaemon(daemon, 1 << 30), undefined);
    assert.match(unusableDaemon({ ...daemon, remap: { uid: 100000, gid: 200000 } }, 0) ?? '', /host uid 100000 but gid 200000/);
    assert.match(unusableDaemon({ ...daemon, storageDriver: 'btrfs' }, 1 << 30) ?? '', /btrfs storage driver.*use overlay2/);
    assert.equal(unusableDaemon({ ...daemon, storageDriver: 'btrfs' }, 0), undefined);
    assert.match(describeDaemon({ ...daemon, remap: undefined }), /no userns-remap: .*steps that would run as root are refused/);
  });

  it('words a failed command with its argv, exit code and stderr, hiding -e values', () => {
    assert.equal(describeArgv(['docker', 'create', '-e', 'TOKEN=s3cret=x', '-e', 'EMPTY', '-w', '/data', 'img']), 'docker create -e TOKEN=… -e EMPTY -w /data img');
    const err = new DockerCommandError(['docker', 'run', '-e', 'A=b', 'img'], 125, null, 'docker: Error response from daemon: boom.\n');
    assert.equal(err.message, 'docker run -e A=… img failed (exit 125): docker: Error response from daemon: boom.');
    assert.equal(new DockerCommandError(['docker', 'run'], 143, 'SIGTERM', '').message, 'docker run failed (killed by SIGTERM): (no error output)');
  });
});

describe('userns-remap host set-up', () => {
  let dir: string;
  let files: SubIdFiles;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-userns-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });
  const fresh = async (subuid: string, subgid: string) => {
    const d = await fs.mkdtemp(path.join(dir, 'etc-'));
    files = { subuid: path.join(d, 'subuid'), subgid: path.join(d, 'subgid') };
    if (subuid) await fs.writeFile(files.subuid, subuid);
    if (subgid) await fs.writeFile(files.subgid, subgid);
  };
  const read = async () => [await fs.readFile(files.subuid, 'utf8').catch(() => ''), await fs.readFile(files.subgid, 'utf8').catch(() => '')];

  it('parses sub-id files, skipping what is not a range', () => {
    assert.deepEqual(parseSubIds('alice:100000:65536\n# comment\n\n1001:300000:10\nbroken:line\n'), [
      { owner: 'alice', start: 100000, count: 65536 },
      { owner: '1001', start: 300000, count: 10 },
    ]);
  });

  it('takes 100000 when it is free and the next aligned free range when it is not', () => {
    assert.equal(freeStart([]), 100000);
    assert.equal(freeStart([{ owner: 'alice', start: 300000, count: 65536 }]), 100000);
    assert.equal(freeStart([{ owner: 'alice', start: 100000, count: 65536 }]), 196608);
    assert.equal(freeStart([{ owner: 'a', start: 150000, count: 10 }, { owner: 'b', start: 400000, count: 70000 }]), 524288);
  });

  it('adds one range to each file once, and says so', async () => {
    await fresh('', '');
    assert.equal(await ensureSubIds('dockremap', 999, true, files), 'would add dockremap:100000:65536 to ' + `${files.subuid} and ${files.subgid}`);
    assert.deepEqual(await read(), ['', ''], 'a dry run changes nothing');
    assert.equal(await ensureSubIds('dockremap', 999, false, files), `added dockremap:100000:65536 to ${files.subuid} and ${files.subgid}`);
    assert.equal(await ensureSubIds('dockremap', 999, false, files), 'already done (dockremap:100000:65536)');
    assert.deepEqual(await read(), ['dockremap:100000:65536\n', 'dockremap:100000:65536\n']);
  });

  it('keeps clear of other owners, completes a half-done set-up, recognises a numeric owner', async () => {
    await fresh('alice:100000:65536', 'alice:100000:65536\n');
    assert.equal(await ensureSubIds('dockremap', 999, false, files), `added dockremap:196608:65536 to ${files.subuid} and ${files.subgid}`);
    assert.deepEqual(await read(), ['alice:100000:65536\ndockremap:196608:65536\n', 'alice:100000:65536\ndockremap:196608:65536\n']);

    await fresh('dockremap:300000:65536\n', '');
    assert.equal(await ensureSubIds('dockremap', 999, false, files), `added dockremap:300000:65536 to ${files.subgid}`);

    await fresh('999:300000:65536\n', '999:300000:65536\n');
    assert.equal(await ensureSubIds('dockremap', 999, false, files), 'already done (dockremap:300000:65536)');
  });

  it('warns about an existing range another owner overlaps, and refuses ranges that start apart', async () => {
    await fresh('dockremap:100000:65536\nalice:120000:1000\n', 'dockremap:100000:65536\n');
    assert.match(await ensureSubIds('dockremap', 999, false, files), /^already done \(dockremap:100000:65536\); WARNING: overlaps alice:120000:1000$/);
    await fresh('dockremap:100000:65536\n', 'dockremap:200000:65536\n');
    await assert.rejects(ensureSubIds('dockremap', 999, false, files), /sub-uids from 100000 but sub-gids from 200000/);
  });

  it('sets userns-remap in daemon.json once, keeping the other settings', async () => {
    const file = path.join(await fs.mkdtemp(path.join(dir, 'docker-')), 'daemon.json');
    assert.equal(await configureDaemonJson({ dryRun: true, file }), `would set "userns-remap": "dockremap" in ${file}`);
    await assert.rejects(fs.stat(file), 'a dry run writes nothing');
    assert.match(await configureDaemonJson({ dryRun: false, file }), /^set "userns-remap": "dockremap" in .* \(takes effect when dockerd restarts\)$/);
    assert.deepEqual(JSON.parse(await fs.readFile(file, 'utf8')), { 'userns-remap': 'dockremap' });
    assert.equal(await configureDaemonJson({ dryRun: false, file }), 'already done ("userns-remap": "dockremap")');

    await fs.writeFile(file, '{ "log-level": "warn", "registry-mirrors": ["https://mirror.example"] }');
    await configureDaemonJson({ dryRun: false, file });
    assert.deepEqual(JSON.parse(await fs.readFile(file, 'utf8')), { 'log-level': 'warn', 'registry-mirrors': ['https://mirror.example'], 'userns-remap': 'dockremap' });

    await fs.writeFile(file, '{"userns-remap": "default"}');
    assert.equal(await configureDaemonJson({ dryRun: false, file }), 'already done ("userns-remap": "default")');

    await fs.writeFile(file, '{"userns-remap": ');
    await assert.rejects(configureDaemonJson({ dryRun: false, file }), new RegExp(`${file.replace(/[/.]/g, '\\$&')} is not valid JSON`));
    assert.equal(await fs.readFile(file, 'utf8'), '{"userns-remap": ', 'a broken file is left for a person to fix');
  });
});
