/** @jsxImportSource hono/jsx */
import type { Context } from 'hono';
import type { Child } from 'hono/jsx';
import type { JSX } from 'hono/jsx/jsx-runtime';
import type { UiSession } from '@sandfleet/db';
import { assetUrl } from './assets.js';
import { CSRF_FIELD, type UiEnv } from './session.js';

export type Section = 'executors' | 'jobs' | 'queues' | 'configuration';

/** Renders a signed-in page inside the layout (routes.tsx builds it; page modules receive it). */
export type PageRenderer = (c: Context<UiEnv>, section: Section, title: string, body: JSX.Element, scripts?: string[]) => Promise<Response>;

/** htmx settings: no inline indicator styles (CSP), no eval. */
const HTMX_CONFIG = JSON.stringify({ includeIndicatorStyles: false, allowEval: false, allowScriptTags: false });

function Document(props: { title: string; children: Child; scripts?: string[] }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="htmx-config" content={HTMX_CONFIG} />
        <title>{props.title} · Sandfleet</title>
        <link rel="stylesheet" href={assetUrl('ui.css')} />
        <script src={assetUrl('htmx.min.js')} defer></script>
        {(props.scripts ?? []).map((src) => (
          <script src={src} defer></script>
        ))}
      </head>
      <body>{props.children}</body>
    </html>
  );
}

/** The hidden CSRF field every signed-in form carries. */
export function CsrfField(props: { session: UiSession }) {
  return <input type="hidden" name={CSRF_FIELD} value={props.session.csrfToken} />;
}

export function Layout(props: { title: string; section: Section; session: UiSession; children: Child; scripts?: string[] }) {
  const link = (section: Section, label: string) => (
    <li>
      <a href={`/${section}`} aria-current={props.section === section ? 'page' : undefined}>
        {label}
      </a>
    </li>
  );
  return (
    <Document title={props.title} scripts={props.scripts}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/">
          Sandfleet
        </a>
        <span>Site admin</span>
        <form class="inline" method="post" action="/sign-out">
          <CsrfField session={props.session} />
          <button type="submit">Sign out</button>
        </form>
      </header>
      <div class="wrap">
        <nav class="side" aria-label="Site admin">
          <h2>Maintenance</h2>
          <ul>
            {link('executors', 'Executors')}
            {link('jobs', 'Jobs')}
            {link('queues', 'Queues')}
          </ul>
          <h2>Configuration</h2>
          <ul>{link('configuration', 'Configuration')}</ul>
        </nav>
        <main id="main">{props.children}</main>
      </div>
    </Document>
  );
}

export function SignInPage(props: { next: string; error?: string }) {
  return (
    <Document title="Sign in">
      <main id="main" class="signin card">
        <h1>Sign in to Sandfleet</h1>
        <form method="post" action="/sign-in">
          <input type="hidden" name="next" value={props.next} />
          <label for="token">Admin token</label>
          <input id="token" name="token" type="password" autocomplete="current-password" required autofocus />
          {props.error ? (
            <p class="error" role="alert">
              {props.error}
            </p>
          ) : null}
          <button type="submit">Sign in</button>
        </form>
        <p class="muted">
          The admin token is printed by <code>sandfleet up</code> at first start (or set with <code>SANDFLEET_ADMIN_TOKEN</code>).
        </p>
      </main>
    </Document>
  );
}

/** Short relative time: "4 s ago", "3 min ago"; the exact time is in the title. */
export function Ago(props: { at: Date | null; now?: number }) {
  if (!props.at) return <span class="muted">—</span>;
  const seconds = Math.max(0, Math.round(((props.now ?? Date.now()) - props.at.getTime()) / 1000));
  const text =
    seconds < 60 ? `${seconds} s ago` : seconds < 3600 ? `${Math.floor(seconds / 60)} min ago` : seconds < 86400 ? `${Math.floor(seconds / 3600)} h ago` : `${Math.floor(seconds / 86400)} d ago`;
  return <time datetime={props.at.toISOString()} title={props.at.toISOString()}>{text}</time>;
}
