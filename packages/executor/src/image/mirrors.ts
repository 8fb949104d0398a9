import { DOCKER_HUB } from './reference.js';

/**
 * Registry mirrors as written in EXECUTOR_DOCKER_REGISTRY_MIRROR_URL: a plain URL mirrors Docker
 * Hub (as Docker's `registry-mirrors` do); `registry=URL` mirrors that registry instead. A mirror
 * answers for the repositories of the registry it mirrors, and for nothing else.
 */
export interface Mirror {
  /** The mirrored registry (`docker.io` for Docker Hub), host[:port]. */
  registry: string;
  /** Base URL, without a trailing slash. */
  url: string;
}

export function parseMirror(entry: string): Mirror {
  const eq = entry.indexOf('=');
  const hasRegistry = eq > 0 && !entry.slice(0, eq).includes('/');
  const registry = hasRegistry ? entry.slice(0, eq).trim().toLowerCase() : DOCKER_HUB;
  const url = (hasRegistry ? entry.slice(eq + 1) : entry).trim().replace(/\/+$/, '');
  return { registry: registry === 'index.docker.io' || registry === 'registry-1.docker.io' ? DOCKER_HUB : registry, url };
}

/** The URL part of a mirror entry, for validating configuration. */
export function mirrorUrl(entry: string): string {
  return parseMirror(entry).url;
}

/** Base URLs of the mirrors that serve `registry`, in configured order. */
export function mirrorsFor(registry: string, entries: readonly string[]): string[] {
  return entries.map(parseMirror).filter((m) => m.registry === registry.toLowerCase()).map((m) => m.url);
}
