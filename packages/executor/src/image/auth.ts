import type { DockerAuthConfig } from '@sandfleet/protocol';
import { DOCKER_HUB } from './reference.js';

/**
 * The registry credentials a job's images are pulled with: the job's own docker config when it
 * has any entries, else the executor's (EXECUTOR_DOCKER_AUTH_CONFIG). Decided once per job.
 */
export function jobRegistryAuth(jobAuth: DockerAuthConfig | null | undefined, executorAuth: DockerAuthConfig | undefined): DockerAuthConfig | undefined {
  return jobAuth?.auths && Object.keys(jobAuth.auths).length > 0 ? jobAuth : executorAuth;
}

export interface BasicCredentials {
  username: string;
  password: string;
}

/** Keys under which a docker config may hold Docker Hub's credentials. */
const HUB_KEYS = ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];

function hostOf(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
}

/**
 * Finds the credentials for `registry` (a host[:port], `docker.io` for Docker Hub) in a docker
 * config's `auths`, matching keys the way `docker login` writes them (with or without scheme/path).
 */
export function findCredentials(auth: DockerAuthConfig | undefined, registry: string): BasicCredentials | undefined {
  const auths = auth?.auths;
  if (!auths) return undefined;
  const wanted = registry === DOCKER_HUB ? HUB_KEYS.map(hostOf) : [hostOf(registry)];
  for (const [key, value] of Object.entries(auths)) {
    if (!wanted.includes(hostOf(key))) continue;
    const decoded = Buffer.from(value.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) continue;
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="https://auth/token",service="registry",scope="repository:x:pull"`. */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const match = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (let m = re.exec(match[2] ?? ''); m; m = re.exec(match[2] ?? '')) {
    params[(m[1] ?? '').toLowerCase()] = (m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1');
  }
  return { scheme: (match[1] ?? '').toLowerCase(), params };
}

export function basicHeader(creds: BasicCredentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
}
