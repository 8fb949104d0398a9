import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '@sandfleet/coordinator';

const load = (env: Record<string, string>) => loadConfig({ dataDir: '/tmp/sandfleet-config-test' }, env).metricPublisher;
const problems = (env: Record<string, string>) => {
  try {
    load(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe('autoscaling metric configuration', () => {
  it('defaults: environment dev, 5 s and 30 s, full allocation, no cloud', () => {
    const config = load({});
    assert.equal(config.environmentLabel, 'dev');
    assert.equal(config.intervalMs, 5_000);
    assert.equal(config.multiQueueIntervalMs, 30_000);
    assert.deepEqual(config.allocations, { batches: { aws: 1, gcp: 1 }, codeintel: { aws: 1, gcp: 1 } });
    assert.equal(config.aws, undefined);
    assert.equal(config.gcp, undefined);
  });

  it('EXECUTOR_ALLOCATIONS: a listed queue reports only to the clouds it lists', () => {
    assert.deepEqual(load({ EXECUTOR_ALLOCATIONS: '{"codeintel":{"aws":0.25}}' }).allocations, { batches: { aws: 1, gcp: 1 }, codeintel: { aws: 0.25, gcp: 0 } });
  });

  it('EXECUTOR_ALLOCATIONS: unknown queues and clouds, shares outside 0..1 and bad JSON are refused', () => {
    assert.match(problems({ EXECUTOR_ALLOCATIONS: '{"nope":{"aws":1}}' }).join('\n'), /unknown queue "nope"/);
    assert.match(problems({ EXECUTOR_ALLOCATIONS: '{"batches":{"azure":1}}' }).join('\n'), /unknown cloud "azure"/);
    assert.match(problems({ EXECUTOR_ALLOCATIONS: '{"batches":{"aws":1.5}}' }).join('\n'), /batches\.aws must be a number from 0 to 1/);
    assert.match(problems({ EXECUTOR_ALLOCATIONS: '{"batches":{"gcp":"1"}}' }).join('\n'), /batches\.gcp must be a number from 0 to 1/);
    assert.match(problems({ EXECUTOR_ALLOCATIONS: '{' }).join('\n'), /not valid JSON/);
  });

  it('AWS needs a region and both halves of a key', () => {
    assert.match(problems({ EXECUTOR_METRIC_AWS_NAMESPACE: 'sourcegraph-executor' }).join('\n'), /EXECUTOR_METRIC_AWS_REGION must be set/);
    assert.match(
      problems({ EXECUTOR_METRIC_AWS_NAMESPACE: 'sourcegraph-executor', EXECUTOR_METRIC_AWS_REGION: 'us-east-1', EXECUTOR_METRIC_AWS_ACCESS_KEY_ID: 'AKID' }).join('\n'),
      /must be set together/,
    );
    const aws = load({ EXECUTOR_METRIC_AWS_NAMESPACE: 'sourcegraph-executor', EXECUTOR_METRIC_AWS_REGION: 'us-east-1', EXECUTOR_METRIC_AWS_ACCESS_KEY_ID: 'AKID', EXECUTOR_METRIC_AWS_SECRET_ACCESS_KEY: 's' }).aws;
    assert.deepEqual(aws, { namespace: 'sourcegraph-executor', region: 'us-east-1', credentials: { accessKeyId: 'AKID', secretAccessKey: 's', sessionToken: undefined }, endpoint: undefined });
  });

  it('GCP needs a readable service-account key with a private key', () => {
    assert.match(problems({ EXECUTOR_METRIC_GCP_PROJECT_ID: 'p' }).join('\n'), /needs a service-account key/);
    assert.match(problems({ EXECUTOR_METRIC_GCP_PROJECT_ID: 'p', EXECUTOR_METRIC_GOOGLE_APPLICATION_CREDENTIALS_FILE: '/nonexistent/key.json' }).join('\n'), /cannot read/);
    assert.match(problems({ EXECUTOR_METRIC_GCP_PROJECT_ID: 'p', EXECUTOR_METRIC_GOOGLE_APPLICATION_CREDENTIALS_FILE_CONTENT: '{"client_email":"a@b"}' }).join('\n'), /no private_key/);
    const privateKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const content = JSON.stringify({ type: 'service_account', client_email: 'a@b', private_key: privateKey });
    assert.equal(load({ EXECUTOR_METRIC_GCP_PROJECT_ID: 'p', EXECUTOR_METRIC_GOOGLE_APPLICATION_CREDENTIALS_FILE_CONTENT: content }).gcp?.serviceAccountJson, content);
  });

  it('intervals are durations', () => {
    assert.equal(load({ SANDFLEET_METRIC_INTERVAL: '250ms', SANDFLEET_MULTIQUEUE_METRIC_INTERVAL: '1s' }).intervalMs, 250);
    assert.match(problems({ SANDFLEET_METRIC_INTERVAL: 'soon' }).join('\n'), /SANDFLEET_METRIC_INTERVAL/);
  });
});
