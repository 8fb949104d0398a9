import { SandfleetError } from '@sandfleet/protocol';
/**
 * Image references as Docker spells them: `busybox`, `library/busybox:1.36`,
 * `localhost:5000/team/tool@sha256:…`, `ghcr.io/o/r:tag@sha256:…`.
 */
export interface ImageReference {
  /** Registry host as written (`docker.io` for Docker Hub), with port. */
  registry: string;
  /** Repository path on that registry (`library/busybox` for official Hub images). */
  repository: string;
  tag?: string | undefined;
  digest?: string | undefined;
  /** The reference normalised for logs: `docker.io/library/busybox:latest`. */
  canonical: string;
}

export const DOCKER_HUB = 'docker.io';

export class InvalidReferenceError extends SandfleetError {
  constructor(readonly reference: string, why: string) {
    super(`invalid image reference "${reference}": ${why}`);
  }
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

export function parseReference(input: string): ImageReference {
  let rest = input.trim();
  if (!rest) throw new InvalidReferenceError(input, 'empty');
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new InvalidReferenceError(input, `unsupported digest "${digest}" (only sha256)`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new InvalidReferenceError(input, `invalid tag "${tag}"`);
  }
  // Docker's rule: the first component is a registry when it has a dot or a port, or is localhost.
  let registry = DOCKER_HUB;
  const firstSlash = rest.indexOf('/');
  if (firstSlash !== -1) {
    const first = rest.slice(0, firstSlash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      registry = first;
      rest = rest.slice(firstSlash + 1);
    }
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  let repository = rest;
  if (!repository) throw new InvalidReferenceError(input, 'no repository');
  for (const part of repository.split('/')) {
    if (!PATH_COMPONENT.test(part)) throw new InvalidReferenceError(input, `invalid repository component "${part}"`);
  }
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if (!tag && !digest) tag = 'latest';
  const canonical = `${registry}/${repository}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
  return { registry, repository, tag, digest, canonical };
}

/** What to ask the registry for: the digest when pinned, else the tag. */
export function manifestReference(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? 'latest';
}

/**
 * The base URL of a registry's v2 API. Docker Hub's API lives at registry-1.docker.io; loopback
 * registries are spoken to over plain HTTP (Docker treats 127.0.0.0/8 and localhost as insecure
 * registries by default), everything else over HTTPS.
 */
export function registryBaseUrl(registry: string): string {
  if (registry === DOCKER_HUB) return 'https://registry-1.docker.io';
  const host = registry.replace(/:\d+$/, '');
  const insecure = host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '[::1]';
  return `${insecure ? 'http' : 'https'}://${registry}`;
}
