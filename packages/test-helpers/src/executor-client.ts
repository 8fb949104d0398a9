/**
 * A minimal hand-driven executor: the executor protocol's requests with their authentication, for
 * tests and benches that play an executor themselves.
 */

/** Sends a request to a coordinator: over HTTP (`fetch` on a base URL) or in-process (`app.request`). */
export type Send = (path: string, init: RequestInit) => Promise<Response>;

export interface JobRef {
  id: number;
  token: string;
}

export interface ExecutorAnswer<T = any> {
  status: number;
  /** The answer parsed as JSON; the text itself when it is not JSON; undefined when empty. */
  body: T;
  text: string;
}

/** The shared executor secret, as the executor API expects it. */
export function executorAuthorization(accessToken: string): { Authorization: string } {
  return { Authorization: `token-executor ${accessToken}` };
}

/** The headers of a job-scoped call: the job token, the job and the executor it was given to. */
export function jobHeaders(job: JobRef, executorName: string): Record<string, string> {
  return {
    Authorization: `Bearer ${job.token}`,
    'X-Sourcegraph-Job-ID': String(job.id),
    'X-Sourcegraph-Executor-Name': executorName,
  };
}

/** `fetch` against `baseUrl`, as a Send. */
export function sendTo(baseUrl: string): Send {
  return (p, init) => fetch(baseUrl + p, init);
}

function parseAnswer(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function executorClient(target: string | Send, executorName: string, accessToken: string) {
  const send = typeof target === 'string' ? sendTo(target) : target;
  const post = async <T = any>(p: string, body: unknown, headers: Record<string, string> = {}): Promise<ExecutorAnswer<T>> => {
    const res = await send(p, {
      method: 'POST',
      headers: { ...executorAuthorization(accessToken), 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: parseAnswer(text) as T, text };
  };
  return {
    post,
    jobHeaders: (job: JobRef) => jobHeaders(job, executorName),
    heartbeat: (queue: string, jobIds: number[] = []) => post(`/.executors/queue/${queue}/heartbeat`, { executorName, version: 'V2', jobIds }),
    dequeue: (queue: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
      post(`/.executors/queue/${queue}/dequeue`, { executorName, version: '5.3.0', ...extra }, headers),
    jobCall: (queue: string, op: string, job: JobRef, body: Record<string, unknown>) =>
      post(`/.executors/queue/${queue}/${op}`, { executorName, jobId: job.id, ...body }, jobHeaders(job, executorName)),
  };
}

export type ExecutorClient = ReturnType<typeof executorClient>;
