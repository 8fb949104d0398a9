import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Env, Hono } from 'hono';

/**
 * The UI's static files, read once at start. Their URLs carry a content hash, so browsers may cache
 * them for a year and still see a new version at once. htmx comes from node_modules: no CDN, no build.
 */

interface Asset {
  body: Buffer;
  type: string;
  url: string;
}

const require = createRequire(import.meta.url);
const files = {
  'htmx.min.js': { path: require.resolve('htmx.org/dist/htmx.min.js'), type: 'text/javascript; charset=utf-8' },
  'log-stream.js': { path: fileURLToPath(new URL('./static/log-stream.js', import.meta.url)), type: 'text/javascript; charset=utf-8' },
  'ui.css': { path: fileURLToPath(new URL('./static/ui.css', import.meta.url)), type: 'text/css; charset=utf-8' },
} as const;

export type AssetName = keyof typeof files;

function load(): Record<AssetName, Asset> {
  const assets = {} as Record<AssetName, Asset>;
  for (const [name, file] of Object.entries(files) as Array<[AssetName, (typeof files)[AssetName]]>) {
    const body = fs.readFileSync(file.path);
    const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
    assets[name] = { body, type: file.type, url: `/assets/${hash}/${name}` };
  }
  return assets;
}

let loaded: Record<AssetName, Asset> | undefined;
function assets(): Record<AssetName, Asset> {
  return (loaded ??= load());
}

export function assetUrl(name: AssetName): string {
  return assets()[name].url;
}

export function serveAssets<E extends Env>(app: Hono<E>): void {
  app.get('/assets/:hash/:name', (c) => {
    const asset = Object.values(assets()).find((a) => a.url === c.req.path);
    if (!asset) return c.text('not found', 404);
    return c.body(new Uint8Array(asset.body), 200, {
      'Content-Type': asset.type,
      'Cache-Control': 'public, max-age=31536000, immutable',
      'X-Content-Type-Options': 'nosniff',
    });
  });
}
