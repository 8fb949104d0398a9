/** @jsxImportSource hono/jsx */
import type { AdminTokenRecord, UiSession } from '@sandfleet/db';
import type { CoordinatorConfig } from '../config.js';
import { DEFAULT_GRACE, type ExecutorSecretView } from '../user-api/executor-secret-routes.js';
import { Ago, CsrfField } from './layout.js';

/** What a form post just did, shown at the top of the page; a new secret appears only here, once. */
export type ConfigurationNotice =
  | { kind: 'rotated'; secret: string; previousAcceptedUntil: Date }
  | { kind: 'token-created'; token: string; record: AdminTokenRecord }
  | { kind: 'error'; message: string };

export interface ConfigurationProps {
  config: CoordinatorConfig;
  secrets: ExecutorSecretView[];
  tokens: AdminTokenRecord[];
  session: UiSession;
  notice?: ConfigurationNotice | undefined;
}

export function ConfigurationPage(props: ConfigurationProps) {
  return (
    <>
      <h1>Configuration</h1>
      {props.notice ? <Notice notice={props.notice} /> : null}
      <SiteSection config={props.config} secrets={props.secrets} />
      <ExecutorSecretSection config={props.config} secrets={props.secrets} session={props.session} />
      <AdminTokenSection tokens={props.tokens} session={props.session} />
    </>
  );
}

function Notice(props: { notice: ConfigurationNotice }) {
  const n = props.notice;
  if (n.kind === 'error') {
    return (
      <p class="card error" role="alert">
        {n.message}
      </p>
    );
  }
  if (n.kind === 'rotated') {
    return (
      <section class="card" id="new-secret" role="status">
        <h2>New executor secret</h2>
        <p>Shown only this once; the coordinator keeps only its hash. Set it as every executor's EXECUTOR_FRONTEND_PASSWORD:</p>
        <pre class="env">
          <code id="new-executor-secret">{n.secret}</code>
        </pre>
        <p>
          The previous secrets are accepted until <time datetime={n.previousAcceptedUntil.toISOString()}>{n.previousAcceptedUntil.toISOString()}</time> and refused
          after. The site config's <code>executors.accessToken</code> stays retired after a restart; put the new secret there to keep the file current.
        </p>
      </section>
    );
  }
  return (
    <section class="card" id="new-token" role="status">
      <h2>New admin token {n.record.description ? `“${n.record.description}”` : `#${n.record.id}`}</h2>
      <p>Shown only this once; the coordinator keeps only its hash:</p>
      <pre class="env">
        <code id="new-admin-token">{n.token}</code>
      </pre>
    </section>
  );
}

function SiteSection(props: { config: CoordinatorConfig; secrets: ExecutorSecretView[] }) {
  const configSecret = props.secrets.find((s) => s.source === 'config');
  return (
    <section class="card" aria-labelledby="site-title">
      <h2 id="site-title">Site configuration</h2>
      <dl class="summary" id="site-config">
        <dt>externalURL</dt>
        <dd data-setting="externalURL">
          {props.config.site.externalURL ?? <span class="muted">not set (executors use the address they reach this coordinator at; links use {props.config.externalUrl})</span>}
        </dd>
        <dt>executors.accessToken</dt>
        <dd data-setting="executors.accessToken">
          {props.config.executorAccessToken ? (
            <>
              set ({props.config.executorAccessToken.length} characters, fingerprint <code>{configSecret?.fingerprint}</code>){' '}
              {configSecret && !configSecret.accepted ? <strong>— retired by a rotation</strong> : configSecret?.expiresAt ? '— retiring' : null}
            </>
          ) : (
            <span class="error">not set: the executor API answers 500 until it is</span>
          )}
        </dd>
      </dl>
    </section>
  );
}

function SecretState(props: { secret: ExecutorSecretView }) {
  const s = props.secret;
  if (s.expiresAt === null) return <span class="state state-completed">current</span>;
  const until = new Date(s.expiresAt);
  if (s.accepted) {
    return (
      <span class="state state-processing">
        accepted until <time datetime={s.expiresAt}>{s.expiresAt}</time>
      </span>
    );
  }
  return (
    <span class="state state-canceled">
      retired <Ago at={until} />
    </span>
  );
}

/** The newest current secret: what a rotation replaces. */
export function currentFingerprint(secrets: ExecutorSecretView[]): string {
  return secrets.find((s) => s.expiresAt === null)?.fingerprint ?? '';
}

function ExecutorSecretSection(props: { config: CoordinatorConfig; secrets: ExecutorSecretView[]; session: UiSession }) {
  return (
    <section class="card" aria-labelledby="secret-title" id="executor-secrets">
      <h2 id="secret-title">Executor secret</h2>
      <p class="muted">
        Executors authenticate with this shared secret (EXECUTOR_FRONTEND_PASSWORD). Rotating it makes a new one and keeps the ones accepted so far working for a grace
        period, so executors can be switched over without dropping jobs.
      </p>
      <table>
        <thead>
          <tr>
            <th scope="col">Fingerprint (sha256)</th>
            <th scope="col">Source</th>
            <th scope="col">Created</th>
            <th scope="col">State</th>
          </tr>
        </thead>
        <tbody>
          {props.secrets.map((s) => (
            <tr class="executor-secret" data-fingerprint={s.fingerprint} data-accepted={String(s.accepted)}>
              <td>
                <code>{s.fingerprint}</code>
              </td>
              <td>{s.source === 'config' ? 'site config' : 'rotated'}</td>
              <td>{s.createdAt ? <Ago at={new Date(s.createdAt)} /> : <span class="muted">—</span>}</td>
              <td>
                <SecretState secret={s} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {props.config.executorAccessToken ? (
        <form class="filters" method="post" action="/configuration/executor-secret/rotate" id="rotate-form">
          <CsrfField session={props.session} />
          <input type="hidden" name="replaces" value={currentFingerprint(props.secrets)} />
          <label>
            Grace period for the previous secrets
            <input name="grace" value={DEFAULT_GRACE} required pattern="[0-9a-zµ.]+" aria-describedby="grace-hint" />
          </label>
          <button type="submit" class="danger">
            Rotate secret
          </button>
          <span class="muted" id="grace-hint">
            a duration such as 90s, 30m, 1h (at most 168h); 0 refuses them at once
          </span>
        </form>
      ) : null}
    </section>
  );
}

function AdminTokenSection(props: { tokens: AdminTokenRecord[]; session: UiSession }) {
  return (
    <section class="card" aria-labelledby="tokens-title" id="admin-tokens">
      <h2 id="tokens-title">Admin tokens</h2>
      <table>
        <thead>
          <tr>
            <th scope="col" class="num">ID</th>
            <th scope="col">Name</th>
            <th scope="col">Source</th>
            <th scope="col">Created</th>
            <th scope="col">Last used</th>
            <th scope="col">
              <span class="skip">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {props.tokens.map((t) => {
            const own = t.id === props.session.adminTokenId;
            return (
              <tr class="admin-token" data-token-id={String(t.id)} data-own={String(own)}>
                <td class="num">{t.id}</td>
                <td>
                  {t.description || <span class="muted">—</span>}
                  {own ? <span class="muted"> (this session)</span> : null}
                </td>
                <td>{t.source}</td>
                <td>
                  <Ago at={t.createdAt} />
                </td>
                <td>
                  <Ago at={t.lastUsedAt} />
                </td>
                <td>
                  <form class="inline" method="post" action={`/configuration/admin-tokens/${t.id}/revoke`}>
                    <CsrfField session={props.session} />
                    <button type="submit" class="danger" aria-label={`Revoke admin token ${t.id}`}>
                      Revoke
                    </button>
                  </form>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <form class="filters" method="post" action="/configuration/admin-tokens" id="create-token-form">
        <CsrfField session={props.session} />
        <label>
          Name
          <input name="name" maxlength={200} placeholder="what the token is for" />
        </label>
        <button type="submit">Create admin token</button>
      </form>
      <p class="muted">
        A token from <code>SANDFLEET_ADMIN_TOKEN</code> (source env) comes back at the next start while the variable is set. Revoking a token also ends the web UI
        sessions signed in with it.
      </p>
    </section>
  );
}

/** Asked before revoking the token this session signed in with: it ends the session too. */
export function ConfirmRevokePage(props: { token: AdminTokenRecord; session: UiSession }) {
  return (
    <section class="card" id="confirm-revoke">
      <h1>Revoke your own admin token?</h1>
      <p>
        Admin token {props.token.id} {props.token.description ? `(“${props.token.description}”)` : ''} is the one this session signed in with. Revoking it signs you
        out at once, here and in every session opened with it; you will need another admin token to sign in again.
      </p>
      <form class="inline" method="post" action={`/configuration/admin-tokens/${props.token.id}/revoke`}>
        <CsrfField session={props.session} />
        <input type="hidden" name="confirm" value="yes" />
        <button type="submit" class="danger">
          Revoke and sign out
        </button>
      </form>{' '}
      <a class="button" href="/configuration#admin-tokens">
        Keep it
      </a>
    </section>
  );
}
