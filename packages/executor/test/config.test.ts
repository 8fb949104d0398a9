import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, formatDuration, loadConfig, parseDurationMs, parseSizeBytes } from '../src/index.js';

const BASE = {
  EXECUTOR_FRONTEND_URL: 'http://127.0.0.1:3080',
  EXECUTOR_FRONTEND_PASSWORD: 'secret-token',
  EXECUTOR_QUEUE_NAME: 'batches',
};
const fixed = { hostname: () => 'host-a', randomUUID: () => '00000000-0000-4000-8000-000000000000', tmpdir: () => '/tmp' };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env, fixed);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.name, 'ConfigError');
    return [...err.problems];
  }
  assert.fail('expected a ConfigError');
}

describe('config', () => {
  it('applies the documented defaults with units in the names', () => {
    const config = loadConfig(BASE, fixed);
    assert.equal(config.frontendUrl, 'http://127.0.0.1:3080');
    assert.deepEqual(config.queueNames, ['batches']);
    assert.equal(config.multiQueue, false);
    assert.equal(config.pollIntervalMs, 1_000);
    assert.equal(config.maximumNumJobs, 1);
    assert.equal(config.maximumRuntimePerJobMs, 30 * 60_000);
    assert.equal(config.numTotalJobs, 0);
    assert.equal(config.maxActiveTimeMs, 0);
    assert.equal(config.heartbeatIntervalMs, 5_000);
    assert.equal(config.cleanupTaskIntervalMs, 60_000);
    assert.equal(config.keepWorkspaces, false);
    assert.equal(config.jobNumCpus, 4);
    assert.equal(config.jobMemory, '12G');
    assert.equal(config.jobMemoryBytes, 12 * 2 ** 30);
    assert.equal(config.diskSpaceBytes, 20 * 2 ** 30);
    assert.equal(config.jobPids, 1024);
    assert.equal(config.stateDir, '/var/lib/sandfleet/executor');
    assert.equal(config.workspaceDir, '/tmp');
    assert.equal(config.longPollWaitSeconds, 20);
    assert.equal(config.executorName, 'host-a-00000000-0000-4000-8000-000000000000');
    assert.equal(config.logLevel, 'info');
    assert.deepEqual(config.runtimeConfig, {
      runtime: 'auto',
      stateDir: '/var/lib/sandfleet/executor',
      registryMirrorUrls: [],
      dockerAuthConfig: undefined,
      network: 'public',
      limits: { cpus: 4, memoryBytes: 12 * 2 ** 30, pids: 1024, diskBytes: 20 * 2 ** 30 },
      maxJobRuntimeMs: 30 * 60_000,
      vmWarmStart: true,
      vmPrefix: 'executor',
      firecracker: { bin: undefined, jailerBin: undefined, useJailer: true, jailerUid: 65534, jailerGid: 65534 },
    });
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.runtimeConfig) && Object.isFrozen(config.runtimeConfig.limits));
  });

  it('parses every variable', () => {
    const config = loadConfig(
      {
        EXECUTOR_FRONTEND_URL: 'https://sg.example.com/',
        EXECUTOR_FRONTEND_PASSWORD: 'pw',
        EXECUTOR_QUEUE_NAMES: 'codeintel,batches',
        EXECUTOR_QUEUE_POLL_INTERVAL: '250ms',
        EXECUTOR_MAXIMUM_NUM_JOBS: '3',
        EXECUTOR_MAXIMUM_RUNTIME_PER_JOB: '1h30m',
        EXECUTOR_NUM_TOTAL_JOBS: '10',
        EXECUTOR_MAX_ACTIVE_TIME: '2h',
        EXECUTOR_KEEP_WORKSPACES: 'true',
        EXECUTOR_FIRECRACKER_NUM_CPUS: '2',
        EXECUTOR_FIRECRACKER_MEMORY: '512M',
        EXECUTOR_FIRECRACKER_DISK_SPACE: '0',
        EXECUTOR_JOB_PIDS: '0',
        EXECUTOR_RUNTIME: 'bwrap',
        EXECUTOR_NETWORK: 'none',
        EXECUTOR_OCI_RUNTIME: 'runc',
        EXECUTOR_VM_WARM_START: 'false',
        EXECUTOR_VM_PREFIX: 'ci-executor',
        EXECUTOR_DOCKER_REGISTRY_MIRROR_URL: 'http://10.0.0.5:5000, https://mirror.example.com',
        EXECUTOR_DOCKER_AUTH_CONFIG: '{"auths":{"registry.example.com":{"auth":"aHVudGVyOmh1bnRlcjI="}}}',
        EXECUTOR_STATE_DIR: '/srv/state',
        EXECUTOR_WORKSPACE_DIR: '/srv/work',
        EXECUTOR_LONG_POLL: '7',
        EXECUTOR_CLEANUP_TASK_INTERVAL: '30s',
        EXECUTOR_NAME: 'fixed-name',
        SRC_LOG_LEVEL: 'dbug',
      },
      fixed,
    );
    assert.equal(config.frontendUrl, 'https://sg.example.com');
    assert.deepEqual(config.queueNames, ['codeintel', 'batches']);
    assert.equal(config.multiQueue, true);
    assert.equal(config.pollIntervalMs, 250);
    assert.equal(config.maximumNumJobs, 3);
    assert.equal(config.maximumRuntimePerJobMs, 90 * 60_000);
    assert.equal(config.runtimeConfig.maxJobRuntimeMs, 90 * 60_000);
    assert.equal(config.cleanupTaskIntervalMs, 30_000);
    assert.equal(config.numTotalJobs, 10);
    assert.equal(config.maxActiveTimeMs, 2 * 3_600_000);
    assert.equal(config.keepWorkspaces, true);
    assert.equal(config.jobNumCpus, 2);
    assert.equal(config.jobMemory, '512M');
    assert.equal(config.jobMemoryBytes, 512 * 2 ** 20);
    assert.equal(config.diskSpaceBytes, 0);
    assert.equal(config.runtimeConfig.runtime, 'bwrap');
    assert.equal(config.runtimeConfig.network, 'none');
    assert.equal(config.runtimeConfig.ociBinary, 'runc');
    assert.equal(config.runtimeConfig.vmWarmStart, false);
    assert.equal(config.runtimeConfig.vmPrefix, 'ci-executor');
    assert.throws(() => loadConfig({ ...BASE, EXECUTOR_VM_PREFIX: '../escape' }, fixed), /EXECUTOR_VM_PREFIX: use letters, digits and hyphens/);
    assert.equal(loadConfig(BASE, fixed).runtimeConfig.vmWarmStart, true, 'warm start is the default');
    assert.throws(() => loadConfig({ ...BASE, EXECUTOR_VM_WARM_START: 'sometimes' }, fixed), /EXECUTOR_VM_WARM_START: not a boolean/);
    assert.deepEqual(config.runtimeConfig.registryMirrorUrls, ['http://10.0.0.5:5000', 'https://mirror.example.com']);
    assert.deepEqual(config.runtimeConfig.dockerAuthConfig, { auths: { 'registry.example.com': { auth: 'aHVudGVyOmh1bnRlcjI=' } } });
    assert.equal(config.stateDir, '/srv/state');
    assert.equal(config.workspaceDir, '/srv/work');
    assert.equal(config.longPollWaitSeconds, 7);
    assert.equal(config.executorName, 'fixed-name');
    assert.equal(config.logLevel, 'debug');
    assert.equal(loadConfig({ ...BASE, EXECUTOR_LONG_POLL: 'false' }, fixed).longPollWaitSeconds, 0);
  });

  it('EXECUTOR_USE_FIRECRACKER selects firecracker unless EXECUTOR_RUNTIME is set explicitly', () => {
    assert.equal(loadConfig({ ...BASE, EXECUTOR_USE_FIRECRACKER: 'true' }, fixed).runtimeConfig.runtime, 'firecracker');
    assert.equal(loadConfig({ ...BASE, EXECUTOR_USE_FIRECRACKER: 'true', EXECUTOR_RUNTIME: 'shell' }, fixed).runtimeConfig.runtime, 'shell');
    assert.equal(loadConfig({ ...BASE, EXECUTOR_USE_FIRECRACKER: 'false' }, fixed).runtimeConfig.runtime, 'auto');
    assert.deepEqual(problemsOf({ ...BASE, EXECUTOR_USE_FIRECRACKER: 'true', EXECUTOR_JOB_NUM_CPUS: '3' }), [
      'EXECUTOR_JOB_NUM_CPUS must be 1 or an even number',
    ]);
  });

  it('reports the queue errors with Sourcegraph\'s messages', () => {
    const { EXECUTOR_QUEUE_NAME: _, ...noQueue } = BASE;
    assert.deepEqual(problemsOf(noQueue), ['neither EXECUTOR_QUEUE_NAME or EXECUTOR_QUEUE_NAMES is set']);
    assert.deepEqual(problemsOf({ ...BASE, EXECUTOR_QUEUE_NAMES: 'batches' }), ['both EXECUTOR_QUEUE_NAME and EXECUTOR_QUEUE_NAMES are set']);
    assert.deepEqual(problemsOf({ ...BASE, EXECUTOR_QUEUE_NAME: 'No pe' }), [
      "EXECUTOR_QUEUE_NAME 'No pe' is not a queue name: use lowercase letters, digits, '-' and '_' (at most 63, starting with a letter or digit), e.g. 'batches'",
    ]);
    assert.deepEqual(problemsOf({ ...noQueue, EXECUTOR_QUEUE_NAMES: 'batches,foo;bar' }), [
      "EXECUTOR_QUEUE_NAMES contains invalid queue name 'foo;bar', valid names are lowercase letters, digits, '-' and '_' (at most 63, starting with a letter or digit) and should be comma-separated",
    ]);
  });

  it('takes any well-formed queue name: the coordinator decides which queues exist', () => {
    assert.deepEqual(loadConfig({ ...BASE, EXECUTOR_QUEUE_NAME: 'docs' }, fixed).queueNames, ['docs']);
    const { EXECUTOR_QUEUE_NAME: _, ...noQueue } = BASE;
    const multi = loadConfig({ ...noQueue, EXECUTOR_QUEUE_NAMES: 'docs, batches,build_2' }, fixed);
    assert.deepEqual([multi.queueNames, multi.multiQueue], [['docs', 'batches', 'build_2'], true]);
  });

  it('reports the frontend URL and password problems', () => {
    assert.deepEqual(problemsOf({ EXECUTOR_QUEUE_NAME: 'batches' }), [
      'invalid value "" for EXECUTOR_FRONTEND_URL: no value supplied',
      'invalid value "" for EXECUTOR_FRONTEND_PASSWORD: no value supplied',
    ]);
    for (const url of ['localhost:3080', 'sourcegraph.example.com', '/relative']) {
      assert.deepEqual(problemsOf({ ...BASE, EXECUTOR_FRONTEND_URL: url }), [
        'EXECUTOR_FRONTEND_URL must be in the format scheme://host (and optionally :port)',
      ], url);
    }
  });

  it('collects every problem and reports them together', () => {
    const problems = problemsOf({
      EXECUTOR_FRONTEND_URL: 'nope',
      EXECUTOR_QUEUE_NAME: 'batches',
      EXECUTOR_QUEUE_POLL_INTERVAL: 'soon',
      EXECUTOR_MAXIMUM_NUM_JOBS: '-1',
      EXECUTOR_MAXIMUM_RUNTIME_PER_JOB: '0',
      EXECUTOR_KEEP_WORKSPACES: 'yes',
      EXECUTOR_JOB_MEMORY: 'lots',
      EXECUTOR_FIRECRACKER_DISK_SPACE: '20 parsecs',
      EXECUTOR_JOB_PIDS: '1.5',
      EXECUTOR_RUNTIME: 'docker-compose',
      EXECUTOR_NETWORK: 'private',
      EXECUTOR_OCI_RUNTIME: 'youki',
      EXECUTOR_DOCKER_REGISTRY_MIRROR_URL: 'ftp://mirror',
      EXECUTOR_DOCKER_AUTH_CONFIG: '{not json',
      EXECUTOR_WORKSPACE_DIR: 'relative/dir',
      EXECUTOR_LONG_POLL: '99',
      SRC_LOG_LEVEL: 'chatty',
    });
    assert.deepEqual(problems, [
      'EXECUTOR_FRONTEND_URL must be in the format scheme://host (and optionally :port)',
      'invalid value "" for EXECUTOR_FRONTEND_PASSWORD: no value supplied',
      'invalid value "soon" for EXECUTOR_QUEUE_POLL_INTERVAL: not a duration (use Go syntax such as 1s, 250ms, 30m, 1h30m)',
      'invalid value "-1" for EXECUTOR_MAXIMUM_NUM_JOBS: not a non-negative integer',
      'invalid value "0" for EXECUTOR_MAXIMUM_RUNTIME_PER_JOB: must be greater than 0',
      'invalid value "yes" for EXECUTOR_KEEP_WORKSPACES: not a boolean (use true or false)',
      'invalid value "lots" for EXECUTOR_JOB_MEMORY: not a size (use e.g. 12G, 512M, 0)',
      'invalid disk size provided for EXECUTOR_FIRECRACKER_DISK_SPACE: "20 parsecs"',
      'invalid value "1.5" for EXECUTOR_JOB_PIDS: not a non-negative integer',
      'invalid value "docker-compose" for EXECUTOR_RUNTIME: must be one of auto, firecracker, qemu, gvisor, oci, docker, bwrap, shell',
      'invalid value "private" for EXECUTOR_NETWORK: must be public or none',
      'invalid value "youki" for EXECUTOR_OCI_RUNTIME: must be auto, crun or runc',
      'invalid value "ftp://mirror" in EXECUTOR_DOCKER_REGISTRY_MIRROR_URL: not an http(s) URL',
      problems.find((p) => p.startsWith('invalid EXECUTOR_DOCKER_AUTH_CONFIG, failed to parse: '))!,
      'invalid value "relative/dir" for EXECUTOR_WORKSPACE_DIR: must be an absolute path',
      'invalid value "99" for EXECUTOR_LONG_POLL: use true, false, or a number of seconds from 0 to 30',
      'invalid value "chatty" for SRC_LOG_LEVEL: use one of dbug, info, warn, eror, crit',
    ]);
    assert.equal(problems.length, 17);
  });

  it('prefers EXECUTOR_JOB_* over the firecracker fallback names', () => {
    const config = loadConfig({ ...BASE, EXECUTOR_JOB_NUM_CPUS: '8', EXECUTOR_FIRECRACKER_NUM_CPUS: '2', EXECUTOR_JOB_MEMORY: '1G', EXECUTOR_FIRECRACKER_MEMORY: '2G' }, fixed);
    assert.equal(config.jobNumCpus, 8);
    assert.equal(config.jobMemoryBytes, 2 ** 30);
  });
});

describe('units', () => {
  it('parses Go durations', () => {
    const cases: [string, number | undefined][] = [
      ['0', 0], ['1s', 1000], ['250ms', 250], ['30m', 1_800_000], ['1h30m', 5_400_000], ['1.5s', 1500], ['500us', 0.5],
      ['2h45m10s', 9_910_000], ['', undefined], ['10', undefined], ['1x', undefined], ['-1s', undefined], ['s', undefined], ['1s2', undefined],
    ];
    for (const [text, ms] of cases) assert.equal(parseDurationMs(text), ms, text);
  });

  it('formats durations like Go', () => {
    const cases: [number, string][] = [[0, '0s'], [250, '250ms'], [1000, '1s'], [1500, '1.5s'], [90_000, '1m30s'], [1_800_000, '30m0s'], [3_600_000, '1h0m0s']];
    for (const [ms, text] of cases) assert.equal(formatDuration(ms), text, String(ms));
  });

  it('parses sizes in 1024 units', () => {
    const cases: [string, number | undefined][] = [
      ['0', 0], ['1024', 1024], ['12G', 12 * 2 ** 30], ['12GB', 12 * 2 ** 30], ['512m', 512 * 2 ** 20], ['64Ki', 64 * 1024],
      ['1.5g', 1.5 * 2 ** 30], ['20T', 20 * 2 ** 40], ['lots', undefined], ['12X', undefined], ['-1G', undefined],
    ];
    for (const [text, bytes] of cases) assert.equal(parseSizeBytes(text), bytes, text);
  });
});
