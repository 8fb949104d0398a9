import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { executorRoutes } from '@sandfleet/protocol';
import { UnexpectedStatusError, type JobRef, type Transport } from './base.js';

/** The files API: workspace files a job names by bucket and key instead of carrying their content. */

/** Files can be large: the whole body may take ten minutes rather than the usual request timeout. */
const FILE_TIMEOUT_MS = 600_000;

/** Streams a workspace file (`GET /.executors/files/<bucket>/<key>`). */
export async function getFile(transport: Transport, job: JobRef, bucket: string, key: string, signal?: AbortSignal): Promise<Readable> {
  const path = executorRoutes.file(bucket, key);
  const response = await transport.send('GET', path, { auth: transport.jobAuth(job), headers: transport.jobHeaders(job), signal, timeoutMs: FILE_TIMEOUT_MS });
  if (response.status !== 200) {
    const body = await response.text().catch(() => '');
    throw new UnexpectedStatusError(response.status, body, 'GET', path);
  }
  if (!response.body) return Readable.from([]);
  return Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
}

/** `HEAD /.executors/files/<bucket>/<key>`: 200 → true, 404 → false. */
export async function fileExists(transport: Transport, job: JobRef, bucket: string, key: string, signal?: AbortSignal): Promise<boolean> {
  const path = executorRoutes.file(bucket, key);
  const response = await transport.send('HEAD', path, { auth: transport.jobAuth(job), headers: transport.jobHeaders(job), signal });
  if (response.status === 200) return true;
  if (response.status === 404) return false;
  throw new UnexpectedStatusError(response.status, '', 'HEAD', path);
}
