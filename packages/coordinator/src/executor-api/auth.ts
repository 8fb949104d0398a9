import type { Context, MiddlewareHandler } from 'hono';
import { createMiddleware } from 'hono/factory';
import { EXECUTOR_NAME_HEADER, EXECUTOR_TOKEN_SCHEME, JOB_ID_HEADER } from '@sandfleet/protocol';
import { findJobTokenOfExecutor, type Database } from '@sandfleet/db';
import type { ExecutorSecretCache } from './secret-cache.js';
import { parseRowId } from '../http/ids.js';
import { textError } from '../http/errors.js';
import { parseAuthorization } from '../http/auth-header.js';

/** Who a job route is talking to, once authenticated. */
export interface JobCaller {
  /** Undefined only with the shared secret and no job id header: the body names the job. */
  jobId: number | undefined;
  /** The attempt the token was minted for; writes from any other attempt are refused. -1: not known yet. */
  attempt: number;
  executorName: string;
  /** True when the shared secret was presented instead of a job token (pre-token executors). */
  viaAccessToken: boolean;
}

export type ExecutorApiEnv = { Variables: { caller: JobCaller } };

/** Sourcegraph's answer to a job id header that is not a job id (Go's strconv wording). */
function jobIdParseError(c: Context, text: string): Response {
  const reason = /^-?\d+$/.test(text) ? 'value out of range' : 'invalid syntax';
  return textError(c, 400, `failed to parse Job ID: strconv.Atoi: parsing ${JSON.stringify(text)}: ${reason}`);
}

const NOT_CONFIGURED = 'Executors are not configured on this instance';

/**
 * `Authorization: token-executor <executors.accessToken>` (docs/protocol.md, "Authentication"). Besides
 * the config's secret, a rotated one is accepted, and a retired one only within its grace period.
 */
export function executorTokenAuth(secrets: ExecutorSecretCache, accessToken: string | undefined): MiddlewareHandler {
  return createMiddleware(async (c, next) => {
    if (!accessToken) return textError(c, 500, NOT_CONFIGURED);
    const auth = parseAuthorization(c.req.header('Authorization'));
    if (auth.kind === 'malformed') {
      return textError(c, 401, `HTTP Authorization request header value must be of the following form: 'token-executor "TOKEN"'`);
    }
    if (auth.kind === 'credentials' && auth.scheme !== EXECUTOR_TOKEN_SCHEME) {
      return textError(c, 401, `unrecognized HTTP Authorization request header scheme (supported values: "token-executor")`);
    }
    const token = auth.kind === 'credentials' ? auth.token : '';
    if (token === '') {
      return textError(c, 401, 'no token value in the HTTP Authorization request header (recommended) or basic auth (deprecated)');
    }
    if (!(await secrets.isAccepted(token))) return textError(c, 401, '');
    await next();
  });
}

export type JobRouteKind = { kind: 'queue'; queue: (c: Context) => string } | { kind: 'git'; repositoryName: (c: Context) => string };

/**
 * `Authorization: Bearer <job token>` plus `X-Sourcegraph-Job-ID` and `X-Sourcegraph-Executor-Name`
 * (docs/protocol.md, "Authentication", checks in the same order and with the same answers).
 */
export function jobTokenAuth(db: Database, secrets: ExecutorSecretCache, accessToken: string | undefined, route: JobRouteKind): MiddlewareHandler<ExecutorApiEnv> {
  return createMiddleware<ExecutorApiEnv>(async (c, next) => {
    if (!accessToken) return textError(c, 500, NOT_CONFIGURED);
    const auth = parseAuthorization(c.req.header('Authorization'));
    if (auth.kind === 'malformed') {
      return textError(c, 401, `HTTP Authorization request header value must be of the following form: 'Bearer "TOKEN"' or 'token-executor TOKEN'`);
    }
    const scheme = auth.kind === 'credentials' ? auth.scheme : '';
    if (auth.kind === 'credentials' && scheme !== 'bearer' && scheme !== EXECUTOR_TOKEN_SCHEME) {
      return textError(c, 401, `unrecognized HTTP Authorization request header scheme (supported values: "Bearer", "token-executor")`);
    }
    const token = auth.kind === 'credentials' ? auth.token : '';
    if (token === '') return textError(c, 401, 'no token value in the HTTP Authorization request header');

    const jobIdText = c.req.header(JOB_ID_HEADER);
    const executorName = c.req.header(EXECUTOR_NAME_HEADER) ?? '';

    if (jobIdText !== undefined && jobIdText !== '' && parseRowId(jobIdText) === undefined) return jobIdParseError(c, jobIdText);

    if (scheme === EXECUTOR_TOKEN_SCHEME) {
      if (!(await secrets.isAccepted(token))) return textError(c, 403, '');
      // The shared secret is trusted for any job; the store's owner checks still apply. Executors
      // from before job tokens name the job only in the body: callers read it from there.
      const jobId = parseRowId(jobIdText);
      c.set('caller', { jobId, attempt: -1, executorName, viaAccessToken: true });
      return next();
    }

    if (jobIdText === undefined || jobIdText === '') return textError(c, 400, `job ID not provided in header '${JOB_ID_HEADER}'`);
    if (executorName === '') return textError(c, 400, 'worker hostname cannot be empty');

    const found = await findJobTokenOfExecutor(db.db, token, executorName);
    if (!found) return textError(c, 401, 'invalid token');
    if (found.jobId !== parseRowId(jobIdText)) return textError(c, 403, 'invalid token');
    if (route.kind === 'git' ? found.repositoryName !== route.repositoryName(c) : found.queue !== route.queue(c)) {
      return textError(c, 403, 'invalid token');
    }
    if (!found.executorKnown) return textError(c, 401, 'invalid token');
    c.set('caller', { jobId: found.jobId, attempt: found.attempt, executorName, viaAccessToken: false });
    await next();
  });
}
