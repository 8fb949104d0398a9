/** A local `docker-registry` on 127.0.0.1 to push the test images to. */
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { capture, SYSTEM_PATH_ENV } from './capture.js';
import type { TestImage } from './images.js';
import { spawnProcess } from './processes.js';
import { makeTempDir } from './temp-dirs.js';

/** A port that nothing listens on (bound, then closed): "an unreachable registry". */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface TestRegistry {
  /** `127.0.0.1:<port>`, as used in image references. */
  host: string;
  url: string;
  credentials?: { username: string; password: string };
  push(repository: string, tag: string, image: TestImage): Promise<void>;
  stop(): Promise<void>;
}

/** Starts `docker-registry serve` on a free loopback port, optionally with htpasswd auth. */
export async function startRegistry(options: { auth?: { username: string; password: string } } = {}): Promise<TestRegistry> {
  const dir = makeTempDir('sandfleet-registry-');
  const port = await freePort();
  let authYaml = '';
  if (options.auth) {
    const hash = (await capture(['/usr/bin/python3', '-W', 'ignore', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))', options.auth.password], { env: SYSTEM_PATH_ENV })).stdout.trim();
    if (!hash.startsWith('$2')) throw new Error('could not make a bcrypt hash for htpasswd (python3 crypt)');
    await fs.writeFile(path.join(dir, 'htpasswd'), `${options.auth.username}:${hash}\n`);
    authYaml = `auth:\n  htpasswd:\n    realm: sandfleet-test\n    path: ${dir}/htpasswd\n`;
  }
  await fs.writeFile(path.join(dir, 'config.yml'), [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog: {disabled: true}',
    'storage:',
    `  filesystem: {rootdirectory: ${dir}/data}`,
    '  delete: {enabled: true}',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    authYaml,
  ].join('\n'));
  const server = spawnProcess('docker-registry', ['serve', path.join(dir, 'config.yml')], SYSTEM_PATH_ENV);
  let exitedEarly = false;
  void server.exit.then(() => (exitedEarly = true));
  const stop = async () => {
    await server.stop('SIGTERM', 2000);
    await fs.rm(dir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  const authHeader = options.auth ? { authorization: `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}` } : undefined;
  // Wait for the listener: bounded, and it fails loudly if the registry died.
  for (let i = 0; ; i++) {
    if (exitedEarly) {
      await stop();
      throw new Error(`docker-registry exited: ${server.output()}`);
    }
    const ok = await fetch(`${url}/v2/`).then((r) => r.status === 200 || r.status === 401, () => false);
    if (ok) break;
    if (i > 200) {
      await stop();
      throw new Error('docker-registry did not start in 10 s');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const put = async (method: string, target: string, body: Buffer | undefined, headers: Record<string, string> = {}) => {
    const r = await fetch(target.startsWith('http') ? target : `${url}${target}`, { method, body, headers: { ...authHeader, ...headers } });
    if (r.status >= 300) throw new Error(`registry ${method} ${target}: HTTP ${r.status} ${await r.text()}`);
    return r;
  };
  return {
    host: `127.0.0.1:${port}`,
    url,
    credentials: options.auth,
    async push(repository, tag, image) {
      for (const blob of image.blobs) {
        const start = await put('POST', `/v2/${repository}/blobs/uploads/`, undefined);
        const location = new URL(start.headers.get('location')!, url);
        location.searchParams.set('digest', blob.digest);
        await put('PUT', location.toString(), blob.data, { 'content-type': 'application/octet-stream' });
      }
      for (const child of image.childManifests) {
        await put('PUT', `/v2/${repository}/manifests/${child.digest}`, child.data, { 'content-type': child.mediaType });
      }
      await put('PUT', `/v2/${repository}/manifests/${tag}`, image.manifest.data, { 'content-type': image.manifest.mediaType });
    },
    stop,
  };
}
