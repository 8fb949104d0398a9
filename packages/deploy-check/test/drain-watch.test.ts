import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { capture, makeTempDir, SYSTEM_PATH_ENV, TEST_TAG, trackNetns } from '@sandfleet/test-helpers';
import { DEPLOY_TERRAFORM } from './terraform-tree.js';

// The AWS executors' scale-in drain, run for real against a stand-in for the instance metadata
// service: 169.254.169.254 on the loopback of a network namespace this test creates. systemctl
// and the aws CLI are stand-ins that record their calls (neither systemd nor AWS is reachable
// here); what is under test is the script's own logic: IMDSv2 tokens, waiting for the
// Terminated target state, drain first, lifecycle action after.

const DRAIN_WATCH = path.join(DEPLOY_TERRAFORM, 'aws/modules/executors/drain-watch.sh');

const FAKE_IMDS = `
import http from 'node:http';
import fs from 'node:fs';
const [log, inServiceAnswers] = process.argv.slice(2);
let stateReads = 0;
http.createServer((req, res) => {
  const answer = (status, body) => { fs.appendFileSync(log, req.method + ' ' + req.url + ' ' + status + '\\n'); res.writeHead(status); res.end(body); };
  if (req.method === 'PUT' && req.url === '/latest/api/token') {
    return req.headers['x-aws-ec2-metadata-token-ttl-seconds'] ? answer(200, 'imds-session-token') : answer(400, '');
  }
  if (req.headers['x-aws-ec2-metadata-token'] !== 'imds-session-token') return answer(401, '');
  if (req.url === '/latest/meta-data/autoscaling/target-lifecycle-state') {
    return answer(200, ++stateReads > Number(inServiceAnswers) ? 'Terminated' : 'InService');
  }
  if (req.url === '/latest/meta-data/instance-id') return answer(200, 'i-0123456789abcdef0');
  if (req.url === '/latest/meta-data/placement/region') return answer(200, 'us-west-2');
  answer(404, '');
}).listen(80, '169.254.169.254', () => console.log('ready'));
`;

/**
 * Each stand-in appends its argv to the log, and whether the drain marker existed then;
 * `systemctl is-system-running` answers $SYSTEM_STATE.
 */
const STAND_IN = `#!/bin/sh
marker=absent; [ -e /run/executor-draining ] && marker=present
echo "$(basename "$0") $* (marker $marker)" >>"$CALL_LOG"
[ "$1" = is-system-running ] && echo "\${SYSTEM_STATE:-running}"
exit 0
`;

const RECYCLE = path.join(DEPLOY_TERRAFORM, 'shared/executor-install/executor-recycle.sh');

describe('executor-drain-watch (AWS scale-in)', () => {
  const namespace = `sft-imds-${TEST_TAG}-${randomBytes(3).toString('hex')}`;
  let dir: string;

  before(async () => {
    dir = makeTempDir('sandfleet-drain-watch-', { untilFileEnds: true });
    trackNetns(namespace);
    for (const argv of [['ip', 'netns', 'add', namespace], ['ip', '-n', namespace, 'link', 'set', 'lo', 'up'],
      ['ip', '-n', namespace, 'addr', 'add', '169.254.169.254/32', 'dev', 'lo']]) {
      const result = await capture(argv);
      assert.equal(result.exitCode, 0, `${argv.join(' ')}: ${result.stderr}`);
    }
    fs.writeFileSync(path.join(dir, 'imds.mjs'), FAKE_IMDS);
    fs.mkdirSync(path.join(dir, 'bin'));
    for (const tool of ['systemctl', 'aws']) fs.writeFileSync(path.join(dir, 'bin', tool), STAND_IN, { mode: 0o755 });
  });

  after(async () => {
    await capture(['ip', 'netns', 'del', namespace]);
  });

  it('waits for Terminated, drains the executor, then completes the lifecycle action', async () => {
    const calls = path.join(dir, 'calls.log');
    const requests = path.join(dir, 'requests.log');
    // A private /run (the drain marker lands there, not on this host), the metadata stand-in in
    // the background, then the script as its unit runs it.
    const script = `
      set -e
      mount -t tmpfs tmpfs /run
      node "$DIR/imds.mjs" "$DIR/requests.log" 1 >"$DIR/imds.out" &
      server=$!
      trap 'kill $server' EXIT
      for _ in $(seq 100); do grep -q ready "$DIR/imds.out" && break; sleep 0.1; done
      bash "$DRAIN_WATCH" my-asg my-asg-drain
    `;
    const result = await capture(['ip', 'netns', 'exec', namespace, 'unshare', '--mount', '--propagation', 'private', 'bash', '-c', script], {
      env: { ...SYSTEM_PATH_ENV, PATH: `${path.join(dir, 'bin')}:${path.dirname(process.execPath)}:${SYSTEM_PATH_ENV.PATH}`, DIR: dir, DRAIN_WATCH, CALL_LOG: calls },
    });
    assert.equal(result.exitCode, 0, `${result.stdout}${result.stderr}`);
    assert.match(result.stdout, /draining the executor[\s\S]*the lifecycle action is complete/);

    assert.deepEqual(fs.readFileSync(calls, 'utf8').trim().split('\n'), [
      'systemctl stop executor.service (marker present)',
      'aws autoscaling complete-lifecycle-action --region us-west-2 --auto-scaling-group-name my-asg --lifecycle-hook-name my-asg-drain --instance-id i-0123456789abcdef0 --lifecycle-action-result CONTINUE (marker present)',
    ]);
    const served = fs.readFileSync(requests, 'utf8');
    // IMDSv2 only: every read carried a session token (none was refused), and the state was
    // polled until it turned Terminated.
    assert.doesNotMatch(served, / 401\n/);
    assert.equal(served.match(/GET \/latest\/meta-data\/autoscaling\/target-lifecycle-state 200/g)?.length, 2);
    assert.match(served, /PUT \/latest\/api\/token 200/);
  });

  it('powers the machine off only after the executor exited 0 by itself', async () => {
    const cases: { exitStatus: string; marker: boolean; systemState: string; poweroff: boolean }[] = [
      { exitStatus: '0', marker: false, systemState: 'running', poweroff: true },
      { exitStatus: '1', marker: false, systemState: 'running', poweroff: false },
      { exitStatus: '0', marker: true, systemState: 'running', poweroff: false },
      { exitStatus: '0', marker: false, systemState: 'stopping', poweroff: false },
    ];
    for (const [i, c] of cases.entries()) {
      const calls = path.join(dir, `recycle-${i}.log`);
      fs.writeFileSync(calls, '');
      const script = `set -e; mount -t tmpfs tmpfs /run; ${c.marker ? 'touch /run/executor-draining;' : ''} bash "$RECYCLE"`;
      const result = await capture(['unshare', '--mount', '--propagation', 'private', 'bash', '-c', script], {
        env: { PATH: `${path.join(dir, 'bin')}:${SYSTEM_PATH_ENV.PATH}`, RECYCLE, CALL_LOG: calls, EXIT_STATUS: c.exitStatus, SYSTEM_STATE: c.systemState },
      });
      assert.equal(result.exitCode, 0, `${JSON.stringify(c)}: ${result.stderr}`);
      assert.equal(fs.readFileSync(calls, 'utf8').includes('systemctl --no-block poweroff'), c.poweroff, JSON.stringify(c));
    }
  });
});
