import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { executorClient, waitFor } from '@sandfleet/test-helpers';
import { ACCESS_TOKEN, startCoordinatorServer, type CoordinatorServer } from '@sandfleet/test-helpers/coordinator';
import {
  grpc,
  makeServiceAccount,
  makeTestCertificate,
  serviceAccountJson,
  startFakeCloudMonitoring,
  startFakeCloudWatch,
  startFakeGoogleOAuth,
  type FakeCloudMonitoring,
  type FakeCloudWatch,
  type FakeGoogleOAuth,
  type TestCertificate,
} from '@sandfleet/test-helpers/cloud-fakes';
import { testBackends } from '@sandfleet/test-helpers/db';

const backend = testBackends()[0]!;
const AWS_KEY = { accessKeyId: 'AKIDREPORTERTEST', secretAccessKey: 'reporter-test-secret-key' };
const REGION = 'us-west-2';
const PROJECT = 'sandfleet-reporter-test';
const INTERVAL_MS = 400;
const CLOUDWATCH_ENV = (cloudwatch: FakeCloudWatch) => ({
  EXECUTOR_METRIC_ENVIRONMENT_LABEL: 'reporter-test',
  EXECUTOR_METRIC_AWS_NAMESPACE: 'sourcegraph-executor',
  EXECUTOR_METRIC_AWS_REGION: REGION,
  EXECUTOR_METRIC_AWS_ACCESS_KEY_ID: AWS_KEY.accessKeyId,
  EXECUTOR_METRIC_AWS_SECRET_ACCESS_KEY: AWS_KEY.secretAccessKey,
  SANDFLEET_METRIC_AWS_ENDPOINT: cloudwatch.url,
  SANDFLEET_METRIC_INTERVAL: `${INTERVAL_MS}ms`,
  SANDFLEET_MULTIQUEUE_METRIC_INTERVAL: `${2 * INTERVAL_MS}ms`,
});

/** The last value CloudWatch received per queue label. */
function latestCloudWatchFigures(cloudwatch: FakeCloudWatch): Record<string, number> {
  const latest: Record<string, number> = {};
  for (const call of cloudwatch.calls) {
    for (const datum of call.MetricData) {
      const dims = Object.fromEntries((datum.Dimensions ?? []).map((d) => [d.Name, d.Value]));
      assert.equal(call.Namespace, 'sourcegraph-executor');
      assert.equal(datum.MetricName, 'src_executors_queue_size');
      assert.equal(dims.environment, 'reporter-test');
      latest[dims.queueName!] = datum.Value!;
    }
  }
  return latest;
}

describe(`autoscaling metric reporter in a running coordinator (${backend})`, () => {
  let coordinator: CoordinatorServer;
  let cloudwatch: FakeCloudWatch;
  let oauth: FakeGoogleOAuth;
  let certificate: TestCertificate;
  let monitoring: FakeCloudMonitoring;

  before(async () => {
    const account = makeServiceAccount();
    cloudwatch = await startFakeCloudWatch({ ...AWS_KEY, region: REGION });
    oauth = await startFakeGoogleOAuth(account);
    certificate = makeTestCertificate();
    // The real service's 5 s sampling period, scaled down with the publishing interval.
    monitoring = await startFakeCloudMonitoring({ projectId: PROJECT, oauth, certificate, samplingPeriodMs: INTERVAL_MS / 2 });
    coordinator = await startCoordinatorServer(backend, {
      ...CLOUDWATCH_ENV(cloudwatch),
      EXECUTOR_ALLOCATIONS: JSON.stringify({ codeintel: { aws: 0.5, gcp: 1 } }),
      EXECUTOR_METRIC_GCP_PROJECT_ID: PROJECT,
      EXECUTOR_METRIC_GOOGLE_APPLICATION_CREDENTIALS_FILE_CONTENT: serviceAccountJson(account, PROJECT, oauth.tokenUri),
      SANDFLEET_METRIC_GCP_ENDPOINT: monitoring.endpoint,
      SANDFLEET_METRIC_GCP_CA_FILE: certificate.certFile,
      SANDFLEET_METRIC_MAX_BACKOFF: '10s',
    });
    // batches: 2 queued + 1 processing = 3; codeintel: 2 queued + 1 canceled = 2; both: 5.
    const submit = (queue: string) => coordinator.admin('POST', '/api/jobs', { queue, dockerSteps: [{ image: 'alpine', commands: ['true'] }] });
    for (let i = 0; i < 3; i++) await submit('batches');
    for (let i = 0; i < 2; i++) await submit('codeintel');
    const canceled = await submit('codeintel');
    await coordinator.admin('POST', `/api/jobs/${canceled.id}/cancel`);
    const dequeued = await executorClient(coordinator.url, 'reporter-test-executor', ACCESS_TOKEN).dequeue('batches');
    assert.equal(dequeued.status, 200, dequeued.text);
  });
  after(async () => {
    await coordinator?.close();
    await monitoring?.close();
    await oauth?.close();
    await cloudwatch?.close();
    certificate?.remove();
  });

  const latestCloudWatch = () => latestCloudWatchFigures(cloudwatch);
  const latestMonitoring = () => {
    const latest: Record<string, number> = {};
    for (const point of monitoring.points) {
      assert.equal(point.labels.environment, 'reporter-test');
      latest[point.labels.queueName!] = point.value;
    }
    return latest;
  };
  const metricsText = async () => (await fetch(`${coordinator.url}/metrics`)).text();
  const sampleValue = (text: string, name: string, labels: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
    return line === undefined ? undefined : Number(line.split(' ').at(-1));
  };

  it('publishes each queue and the multi-queue label to CloudWatch, with the AWS allocation applied', async () => {
    const expected = { batches: 3, codeintel: 1, batches_codeintel: 5 };
    await waitFor('CloudWatch figures', () => isDeepStrictEqual(latestCloudWatch(), expected) || undefined, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}: last ${JSON.stringify(latestCloudWatch())}, rejections ${JSON.stringify(cloudwatch.rejections)}`);
    });
  });

  it('publishes each queue and the multi-queue label to Cloud Monitoring', async () => {
    const expected = { batches: 3, codeintel: 2, batches_codeintel: 5 };
    await waitFor('Cloud Monitoring figures', () => isDeepStrictEqual(latestMonitoring(), expected) || undefined, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}: last ${JSON.stringify(latestMonitoring())}, rejections ${JSON.stringify(monitoring.rejections)}`);
    });
    assert.deepEqual(monitoring.rejections, []);
  });

  it('exposes the queue size and the oldest queued age to Prometheus', async () => {
    const text = await metricsText();
    assert.equal(sampleValue(text, 'src_executor_total', 'queue="batches"'), 3);
    assert.equal(sampleValue(text, 'src_executor_total', 'queue="codeintel"'), 2);
    const age = await waitFor('a positive oldest-queued age', async () => {
      const value = sampleValue(await metricsText(), 'src_executor_queued_duration_seconds_total', 'queue="batches"');
      return value !== undefined && value > 0 ? value : undefined;
    });
    assert.ok(age < 3600, `age ${age}`);
    assert.ok((sampleValue(text, 'sandfleet_autoscaling_samples_published_total', 'cloud="aws"') ?? 0) > 0);
  });

  it('counts failed publishes, backs off between attempts, keeps serving and recovers', async () => {
    const errors = async (cloud: string) => sampleValue(await metricsText(), 'sandfleet_autoscaling_publish_errors_total', `cloud="${cloud}"`) ?? 0;
    const awsErrorsBefore = await errors('aws');
    const gcpErrorsBefore = await errors('gcp');
    const rejectedBefore = cloudwatch.rejections.length;
    cloudwatch.failWith({ status: 500, type: 'InternalFailure' });
    monitoring.failWith(grpc.status.PERMISSION_DENIED);
    try {
      await waitFor('four failed CloudWatch attempts', () => cloudwatch.rejections.length - rejectedBefore >= 4, 90_000);
      await waitFor('counted errors', async () => (await errors('aws')) >= awsErrorsBefore + 4 && (await errors('gcp')) > gcpErrorsBefore, 90_000);
      // The pause after the n-th failure is at least interval × 2^(n-1): slowness only lengthens it.
      const times = cloudwatch.rejections.slice(rejectedBefore).map((r) => r.at);
      for (let n = 1; n < 4; n++) {
        const gap = times[n]! - times[n - 1]!;
        assert.ok(gap >= INTERVAL_MS * 2 ** (n - 1) - 50, `gap ${n} is ${gap} ms`);
      }
      // The coordinator keeps serving meanwhile.
      assert.equal((await coordinator.admin('GET', '/api/queues')) !== undefined, true);
    } finally {
      cloudwatch.failWith(undefined);
      monitoring.failWith(undefined);
    }
    const callsBefore = cloudwatch.calls.length;
    const pointsBefore = monitoring.points.length;
    await waitFor('publishing again', () => cloudwatch.calls.length > callsBefore && monitoring.points.length > pointsBefore, 90_000);
  });
});


describe(`autoscaling metric reporter with a declared queue (${backend})`, () => {
  let coordinator: CoordinatorServer;
  let cloudwatch: FakeCloudWatch;

  before(async () => {
    cloudwatch = await startFakeCloudWatch({ ...AWS_KEY, region: REGION });
    coordinator = await startCoordinatorServer(backend, { ...CLOUDWATCH_ENV(cloudwatch), EXECUTOR_ALLOCATIONS: JSON.stringify({ docs: { aws: 0.5 } }) }, {
      'sandfleet.queues': [{ name: 'docs' }],
    });
    const submit = (queue: string) => coordinator.admin('POST', '/api/jobs', { queue, dockerSteps: [{ image: 'alpine', commands: ['true'] }] });
    for (let i = 0; i < 4; i++) await submit('docs');
    await submit('batches');
  });
  after(async () => {
    await coordinator?.close();
    await cloudwatch?.close();
  });

  it('publishes the declared queue (its allocation applied) and counts it in the multi-queue label', async () => {
    const expected = { batches: 1, codeintel: 0, docs: 2, batches_codeintel_docs: 5 };
    await waitFor('CloudWatch figures', () => isDeepStrictEqual(latestCloudWatchFigures(cloudwatch), expected) || undefined, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}: last ${JSON.stringify(latestCloudWatchFigures(cloudwatch))}, rejections ${JSON.stringify(cloudwatch.rejections)}`);
    });
    const text = await (await fetch(`${coordinator.url}/metrics`)).text();
    assert.match(text, /^src_executor_total\{queue="docs"\} 4$/m);
    assert.match(text, /^src_executor_queued_duration_seconds_total\{queue="docs"\} [0-9.]+$/m);
  });
});
