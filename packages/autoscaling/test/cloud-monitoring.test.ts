import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  grpc,
  makeServiceAccount,
  makeTestCertificate,
  serviceAccountJson,
  startFakeCloudMonitoring,
  startFakeGoogleOAuth,
  type FakeCloudMonitoring,
  type FakeGoogleOAuth,
  type TestCertificate,
} from '@sandfleet/test-helpers/cloud-fakes';
import { MetricServiceClient } from '@google-cloud/monitoring';
import { createCloudMonitoringSink, PublishError, type MetricSink } from '@sandfleet/autoscaling';

const PROJECT = 'sandfleet-test-project';

describe('Cloud Monitoring sink against a gRPC MetricService and an OAuth token endpoint', () => {
  const account = makeServiceAccount();
  let oauth: FakeGoogleOAuth;
  let certificate: TestCertificate;
  let fake: FakeCloudMonitoring;
  const sinks: MetricSink[] = [];
  const sink = async (overrides: { projectId?: string; json?: string } = {}) => {
    const created = await createCloudMonitoringSink({
      projectId: overrides.projectId ?? PROJECT,
      serviceAccountJson: overrides.json ?? serviceAccountJson(account, PROJECT, oauth.tokenUri),
      endpoint: fake.endpoint,
      caFile: certificate.certFile,
    });
    sinks.push(created);
    return created;
  };
  before(async () => {
    oauth = await startFakeGoogleOAuth(account);
    certificate = makeTestCertificate();
    fake = await startFakeCloudMonitoring({ projectId: PROJECT, oauth, certificate });
  });
  after(async () => {
    for (const s of sinks) await s.close();
    await fake?.close();
    await oauth?.close();
    certificate?.remove();
  });

  it('creates a GAUGE INT64 point of custom.googleapis.com/executors/queue/size on the global resource', async () => {
    const s = await sink();
    await s.publish({ queueName: 'codeintel', environment: 'prod', value: 12 });
    await s.publish({ queueName: 'batches_codeintel', environment: 'prod', value: 20 });
    assert.deepEqual(
      fake.points.map(({ endTimeMs: _, ...point }) => point),
      [
        { metricType: 'custom.googleapis.com/executors/queue/size', labels: { queueName: 'codeintel', environment: 'prod' }, resource: { type: 'global', labels: { project_id: PROJECT } }, value: 12 },
        { metricType: 'custom.googleapis.com/executors/queue/size', labels: { queueName: 'batches_codeintel', environment: 'prod' }, resource: { type: 'global', labels: { project_id: PROJECT } }, value: 20 },
      ],
    );
    assert.equal(oauth.issuedCount(), 1, 'one access token serves both calls');
  });

  it('stamps a point that comes early one sampling period after the previous one, as the service requires', async () => {
    const s = await sink();
    await s.publish({ queueName: 'batches', environment: 'early', value: 1 });
    await s.publish({ queueName: 'batches', environment: 'early', value: 2 });
    const [first, second] = fake.points.filter((p) => p.labels.environment === 'early');
    assert.equal(second?.value, 2, JSON.stringify(fake.rejections));
    assert.ok(second!.endTimeMs - first!.endTimeMs >= 5_000);
  });

  it('gets no token with a key the account does not own', async () => {
    const stranger = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const before = fake.points.length;
    await assert.rejects((await sink({ json: serviceAccountJson(account, PROJECT, oauth.tokenUri, stranger) })).publish({ queueName: 'batches', environment: 'prod', value: 1 }), PublishError);
    assert.ok(oauth.refusals.includes('Invalid JWT Signature.'), JSON.stringify(oauth.refusals));
    assert.equal(fake.points.length, before);
  });

  it('is refused for another project', async () => {
    await assert.rejects((await sink({ projectId: 'someone-elses-project' })).publish({ queueName: 'batches', environment: 'prod', value: 1 }), /PERMISSION_DENIED/);
  });

  it('the service refuses a bearer token its token endpoint did not issue', async () => {
    const forged = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
      const metadata = new grpc.Metadata();
      metadata.set('authorization', 'Bearer ya29.forged');
      callback(null, metadata);
    });
    const client = new MetricServiceClient({
      credentials: { client_email: account.clientEmail, private_key: account.privateKeyPem },
      sslCreds: grpc.credentials.combineChannelCredentials(grpc.credentials.createSsl(certificate.cert), forged),
      apiEndpoint: '127.0.0.1',
      port: Number(fake.endpoint.split(':')[1]),
    });
    try {
      await assert.rejects(client.createTimeSeries({ name: `projects/${PROJECT}`, timeSeries: [] }, { retry: null }), /UNAUTHENTICATED/);
    } finally {
      await client.close();
    }
  });

  it('turns service errors into PublishError', async () => {
    fake.failWith(grpc.status.UNAVAILABLE);
    try {
      await assert.rejects((await sink()).publish({ queueName: 'batches', environment: 'other', value: 1 }), (err: unknown) => err instanceof PublishError && err.cloud === 'gcp');
    } finally {
      fake.failWith(undefined);
    }
  });
});
