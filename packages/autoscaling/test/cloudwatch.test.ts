import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { startFakeCloudWatch, type FakeCloudWatch } from '@sandfleet/test-helpers/cloud-fakes';
import { createCloudWatchSink, PublishError, type MetricSink } from '@sandfleet/autoscaling';

const KEY = { accessKeyId: 'AKIDSANDFLEETTEST', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', sessionToken: 'session-token-for-tests' };
const REGION = 'eu-west-1';
const sample = { queueName: 'batches', environment: 'prod', value: 7 };

describe('CloudWatch sink against a SigV4-checking PutMetricData endpoint', () => {
  let fake: FakeCloudWatch;
  const sinks: MetricSink[] = [];
  const sink = async (overrides: Partial<Parameters<typeof createCloudWatchSink>[0]> = {}) => {
    const created = await createCloudWatchSink({ namespace: 'sourcegraph-executor', region: REGION, credentials: KEY, endpoint: fake.url, ...overrides });
    sinks.push(created);
    return created;
  };
  before(async () => {
    fake = await startFakeCloudWatch({ ...KEY, region: REGION });
  });
  after(async () => {
    for (const s of sinks) await s.close();
    await fake?.close();
  });

  it('publishes src_executors_queue_size with the queueName and environment dimensions', async () => {
    await (await sink()).publish(sample);
    const call = fake.calls.at(-1)!;
    assert.equal(call.Namespace, 'sourcegraph-executor');
    assert.deepEqual(call.MetricData, [
      { MetricName: 'src_executors_queue_size', Unit: 'Count', Value: 7, Dimensions: [{ Name: 'queueName', Value: 'batches' }, { Name: 'environment', Value: 'prod' }] },
    ]);
    // The protocol this SDK version speaks: AWS JSON 1.0, signed with the session token.
    assert.equal(call.headers['x-amz-target'], 'GraniteServiceVersion20100801.PutMetricData');
    assert.equal(call.headers['x-amz-security-token'], KEY.sessionToken);
  });

  it('is refused with a wrong secret', async () => {
    const refused = await (await sink({ credentials: { ...KEY, secretAccessKey: 'not-the-secret' } })).publish(sample).then(() => undefined, (err: unknown) => err);
    assert.ok(refused instanceof PublishError, String(refused));
    assert.match(refused.message, /signature we calculated does not match/);
  });

  it('is refused without the session token the key needs, or in another region', async () => {
    await assert.rejects((await sink({ credentials: { ...KEY, sessionToken: undefined } })).publish(sample), /security token included in the request is invalid/);
    await assert.rejects((await sink({ region: 'us-east-1' })).publish(sample), /scoped to a valid region/);
  });

  it('refuses a request signed with a skewed clock', async () => {
    const client = new CloudWatchClient({ region: REGION, credentials: KEY, endpoint: fake.url, maxAttempts: 1, systemClockOffset: -60 * 60_000 });
    // The SDK corrects its clock from the server's Date header after a skew error; that is fine, we
    // only need the first, skewed attempt to be refused.
    await assert.rejects(client.send(new PutMetricDataCommand({ Namespace: 'sourcegraph-executor', MetricData: [{ MetricName: 'm', Value: 1 }] })), /Signature expired/);
    client.destroy();
  });

  it('refuses a request whose signature leaves out a header that must be signed', async () => {
    const client = new CloudWatchClient({ region: REGION, credentials: KEY, endpoint: fake.url, maxAttempts: 1 });
    client.middlewareStack.addRelativeTo(
      (next: any) => async (args: any) => {
        const headers = args.request.headers as Record<string, string>;
        headers.authorization = headers.authorization!.replace('x-amz-target;', '');
        return next(args);
      },
      { relation: 'after', toMiddleware: 'httpSigningMiddleware', name: 'unsignTarget' },
    );
    await assert.rejects(client.send(new PutMetricDataCommand({ Namespace: 'sourcegraph-executor', MetricData: [{ MetricName: 'm', Value: 1 }] })), /'x-amz-target' must be a signed header/);
    client.destroy();
  });

  it('refuses parameters CloudWatch refuses', async () => {
    await assert.rejects((await sink({ namespace: 'AWS/EC2' })).publish(sample), /AWS\/ for parameter Namespace is invalid/);
    await assert.rejects((await sink()).publish({ ...sample, environment: '' }), /Dimensions: Value must be 1 to 1024 characters/);
  });

  it('turns service errors into PublishError', async () => {
    fake.failWith({ status: 500, type: 'InternalFailure' });
    try {
      await assert.rejects((await sink()).publish(sample), (err: unknown) => err instanceof PublishError && err.cloud === 'aws');
    } finally {
      fake.failWith(undefined);
    }
  });
});
