import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';

// node --test runs each file in its own process, so this module cache is this file's alone.
const moduleCache = () => Object.keys(createRequire(import.meta.url).cache);
const loaded = (pkg: string) => moduleCache().some((file) => file.includes(`/node_modules/${pkg}/`));

describe('cloud SDKs are loaded only when a sink is created', () => {
  it('the coordinator and a configuration naming both clouds load neither SDK', async () => {
    const { loadConfig } = await import('@sandfleet/coordinator');
    const config = loadConfig({ dataDir: '/tmp/sandfleet-lazy-load-test' }, { EXECUTOR_METRIC_AWS_NAMESPACE: 'sourcegraph-executor', EXECUTOR_METRIC_AWS_REGION: 'us-east-1' });
    assert.equal(config.metricPublisher.aws?.namespace, 'sourcegraph-executor');
    assert.equal(loaded('@aws-sdk/client-cloudwatch'), false);
    assert.equal(loaded('@google-cloud/monitoring'), false);
    assert.equal(loaded('google-gax'), false);
  });

  it('creating the CloudWatch sink loads the AWS SDK (and the check can see it)', async () => {
    const { createCloudWatchSink } = await import('@sandfleet/autoscaling');
    const sink = await createCloudWatchSink({ namespace: 'n', region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, endpoint: 'http://127.0.0.1:9' });
    await sink.close();
    assert.equal(loaded('@aws-sdk/client-cloudwatch'), true);
    assert.equal(loaded('@google-cloud/monitoring'), false);
  });
});
