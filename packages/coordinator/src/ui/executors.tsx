/** @jsxImportSource hono/jsx */
import type { ExecutorRecord, Job } from '@sandfleet/db';
import type { CoordinatorConfig } from '../config.js';
import { executorCompatibility, type ExecutorCompatibility } from '../executor-compatibility.js';
import { COORDINATOR_VERSION } from '../version.js';
import { Ago } from './layout.js';

/** Inactive executors older than this leave the default view ("show all" brings them back). */
export const EXECUTOR_HIDE_AFTER_MS = 60 * 60 * 1000;
/** How often the page re-reads the executor list. */
export const EXECUTOR_POLL = 'every 3s';

export function visibleExecutors(all: ExecutorRecord[], showAll: boolean, now = Date.now()): ExecutorRecord[] {
  return showAll ? all : all.filter((e) => now - e.lastSeenAt.getTime() <= EXECUTOR_HIDE_AFTER_MS);
}

/** The live part of the page: re-fetched by htmx; the same markup is served without JavaScript. */
const COMPATIBILITY_TEXT: Record<ExecutorCompatibility, { label: string; title: string }> = {
  'up-to-date': { label: 'compatible', title: `within one minor version of this coordinator (${COORDINATOR_VERSION})` },
  outdated: { label: 'outdated', title: `older than this coordinator (${COORDINATOR_VERSION}) allows: upgrade the executor` },
  'version-ahead': { label: 'too new', title: `newer than this coordinator (${COORDINATOR_VERSION}) allows: upgrade the coordinator` },
};

function CompatibilityBadge(props: { executor: ExecutorRecord; active: boolean }) {
  const verdict = executorCompatibility(props.executor.executorVersion, COORDINATOR_VERSION, props.active);
  if (!verdict) return null;
  const text = COMPATIBILITY_TEXT[verdict];
  return (
    <span class={`badge compat-${verdict}`} data-compatibility={verdict} title={text.title}>
      {text.label}
    </span>
  );
}

function RunningJobs(props: { jobs: Job[] | undefined }) {
  if (!props.jobs?.length) return <span class="muted">idle</span>;
  return (
    <ul class="running-jobs">
      {props.jobs.map((job) => (
        <li>
          <a href={`/jobs/${job.id}`}>#{job.id}</a> <span class="muted">{job.queue}</span>
        </li>
      ))}
    </ul>
  );
}

export function ExecutorList(props: { executors: ExecutorRecord[]; running: Map<string, Job[]>; hidden: number; showAll: boolean; activeMs: number }) {
  const now = Date.now();
  const query = props.showAll ? '?all=1' : '';
  return (
    <div id="executor-list" hx-get={`/executors/list${query}`} hx-trigger={EXECUTOR_POLL} hx-swap="outerHTML">
      {props.executors.length === 0 ? (
        <p class="muted">No executor has sent a heartbeat in the last hour.</p>
      ) : (
        <table>
          <caption class="muted">
            {props.executors.length} executor(s)
          </caption>
          <thead>
            <tr>
              <th scope="col">Hostname</th>
              <th scope="col">Queue</th>
              <th scope="col">Runtime</th>
              <th scope="col">Running jobs</th>
              <th scope="col">OS / arch</th>
              <th scope="col">Executor</th>
              <th scope="col">Git</th>
              <th scope="col">Docker</th>
              <th scope="col">src-cli</th>
              <th scope="col">First seen</th>
              <th scope="col">Last seen</th>
            </tr>
          </thead>
          <tbody>
            {props.executors.map((e) => {
              const active = now - e.lastSeenAt.getTime() <= props.activeMs;
              return (
                <tr class="executor" data-hostname={e.hostname} data-active={String(active)}>
                  <td>
                    <span class={active ? 'dot active' : 'dot'} role="img" aria-label={active ? 'active' : 'inactive'} title={active ? 'active' : 'inactive'}></span>
                    {e.hostname}
                  </td>
                  <td>{e.queueNames?.join(', ') ?? e.queueName ?? ''}</td>
                  <td class="runtime">{e.runtime || <span class="muted">—</span>}</td>
                  <td class="running">
                    <RunningJobs jobs={props.running.get(e.hostname)} />
                  </td>
                  <td>
                    {e.os || '?'} / {e.architecture || '?'}
                  </td>
                  <td class="version">
                    {e.executorVersion || '—'} <CompatibilityBadge executor={e} active={active} />
                  </td>
                  <td>{e.gitVersion || '—'}</td>
                  <td>{e.dockerVersion || '—'}</td>
                  <td>{e.srcCliVersion || '—'}</td>
                  <td>
                    <Ago at={e.firstSeenAt} now={now} />
                  </td>
                  <td>
                    <Ago at={e.lastSeenAt} now={now} />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <p>
        {props.showAll ? (
          <a href="/executors">Hide executors inactive for over an hour</a>
        ) : props.hidden > 0 ? (
          <a href="/executors?all=1">Show all ({props.hidden} inactive for over an hour hidden)</a>
        ) : null}
      </p>
    </div>
  );
}

/**
 * Shown while no executor ever connected: how to start one against this coordinator. The site
 * config's secret is revealed only while it is accepted; a rotated secret is stored hashed and was
 * shown once, when it was made.
 */
export function ExecutorSetup(props: { config: CoordinatorConfig; url: string; configSecretRetiresAt?: Date | undefined }) {
  const url = props.url;
  const password = props.config.executorAccessToken;
  const retiresAt = props.configSecretRetiresAt;
  const retired = retiresAt !== undefined && retiresAt.getTime() <= Date.now();
  return (
    <section class="card" id="executor-setup" aria-labelledby="setup-title">
      <h2 id="setup-title">Set up an executor</h2>
      <p>No executor has connected to this coordinator yet. Start one on any machine that can reach {url} with:</p>
      <pre class="env">
        {`EXECUTOR_FRONTEND_URL=${url}\nEXECUTOR_FRONTEND_PASSWORD=<see below>\nEXECUTOR_QUEUE_NAME=batches\nnpx executor run`}
      </pre>
      {!password ? (
        <p class="error">
          <code>executors.accessToken</code> is not set in the site configuration: executors cannot authenticate until it is.
        </p>
      ) : retired ? (
        <p id="executor-password-rotated">
          The site configuration's <code>executors.accessToken</code> was rotated out on {retiresAt.toISOString()}. Use the secret shown when it was
          rotated (see <a href="/configuration">Configuration</a>); it is stored hashed and cannot be shown again.
        </p>
      ) : (
        <details>
          <summary>Reveal EXECUTOR_FRONTEND_PASSWORD</summary>
          <p>
            <code id="executor-password">{password}</code>
          </p>
          <p class="muted">
            This is <code>executors.accessToken</code> from the site configuration. Keep it secret: it lets a machine take jobs and their secrets.
            {retiresAt ? ` It was rotated and is accepted only until ${retiresAt.toISOString()}: use the new secret for new executors.` : ''}
          </p>
        </details>
      )}
      <p class="muted">Within a few seconds of its first heartbeat the executor appears above with a green dot.</p>
    </section>
  );
}
