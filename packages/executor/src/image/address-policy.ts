import dns from 'node:dns/promises';
import net from 'node:net';

/**
 * Image pulls run in the executor's own network namespace, so a registry host named by a job's
 * image, a 401 challenge's token realm or a redirect could otherwise reach the host's private
 * networks (cloud metadata, the coordinator's database, loopback services). Every such target must
 * resolve only to public addresses, unless the operator named it: a configured mirror or an entry
 * of EXECUTOR_ALLOWED_PRIVATE_REGISTRIES (`host` for any port, or `host:port`).
 */
export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Name resolution; tests inject their own. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) =>
  (await dns.lookup(hostname, { all: true, verbatim: true })).map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));

export class BlockedAddressError extends Error {
  constructor(readonly target: string, detail: string) {
    super(`${target} ${detail}; image pulls only reach public addresses unless the registry is a configured mirror or listed in EXECUTOR_ALLOWED_PRIVATE_REGISTRIES`);
    this.name = 'BlockedAddressError';
  }
}

const BLOCKED_V4: ReadonlyArray<readonly [string, number]> = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.168.0.0', 16], ['224.0.0.0', 4], ['240.0.0.0', 4],
];

const BLOCKED_V6: ReadonlyArray<readonly [string, number]> = [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8],
];

function v4Bits(address: string): bigint {
  return address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function v6Bits(address: string): bigint {
  const blocks = new net.SocketAddress({ address, family: 'ipv6' }).address;
  // Expand `::` and an embedded dotted quad into eight 16-bit groups.
  let text = blocks;
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    const v4 = v4Bits(dotted[1]);
    text = text.slice(0, -dotted[1].length) + `${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
}

function inRange(bits: bigint, width: number, base: bigint, prefix: number): boolean {
  const shift = BigInt(width - prefix);
  return bits >> shift === base >> shift;
}

/** True for loopback, private, link-local, CGNAT, multicast, reserved and unspecified addresses. */
export function isBlockedAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) {
    const bits = v4Bits(address);
    return BLOCKED_V4.some(([base, prefix]) => inRange(bits, 32, v4Bits(base), prefix));
  }
  if (family !== 6) return true;
  const bits = v6Bits(address);
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible) reach the IPv4 address.
  if (bits >> 32n === 0xffffn || bits >> 32n === 0n) {
    const v4 = bits & 0xffffffffn;
    if (bits >> 32n === 0xffffn || v4 > 1n) {
      return BLOCKED_V4.some(([base, prefix]) => inRange(v4, 32, v4Bits(base), prefix));
    }
  }
  return BLOCKED_V6.some(([base, prefix]) => inRange(bits, 128, v6Bits(base), prefix));
}

/** `host` or `host:port` as written in EXECUTOR_ALLOWED_PRIVATE_REGISTRIES or a mirror URL. */
function normaliseHost(entry: string): string {
  return entry.trim().toLowerCase().replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '');
}

export class RegistryAddressPolicy {
  private readonly allowed: Set<string>;

  constructor(allowedPrivate: readonly string[], private readonly resolver: Resolver = systemResolver) {
    this.allowed = new Set(allowedPrivate.map(normaliseHost).filter(Boolean));
  }

  /** Whether the operator allowed `url`'s host (any port) or host:port to be private. */
  isOperatorAllowed(url: URL): boolean {
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    const host = url.hostname.toLowerCase();
    return this.allowed.has(host) || this.allowed.has(`${host}:${port}`) || (!url.port && this.allowed.has(url.host.toLowerCase()));
  }

  /**
   * Resolves `url`'s host once and returns the address to connect to, refusing blocked ones. The
   * caller connects to exactly this address, so a second, different DNS answer cannot slip in.
   */
  async addressFor(url: URL): Promise<ResolvedAddress> {
    const hostname = url.hostname.replace(/^\[|\]$/g, '');
    const literal = net.isIP(hostname);
    let addresses: ResolvedAddress[];
    if (literal) addresses = [{ address: hostname, family: literal === 6 ? 6 : 4 }];
    else {
      try {
        addresses = await this.resolver(hostname);
      } catch (err) {
        throw new NameResolutionError(url.host, err);
      }
      if (addresses.length === 0) throw new NameResolutionError(url.host, undefined);
    }
    if (this.isOperatorAllowed(url)) return addresses[0]!;
    const blocked = addresses.find((a) => isBlockedAddress(a.address));
    if (blocked) throw new BlockedAddressError(url.host, literal ? 'is a private or reserved address' : `resolves to a private or reserved address (${blocked.address})`);
    return addresses[0]!;
  }
}

export class NameResolutionError extends Error {
  constructor(readonly host: string, cause: unknown) {
    super(`cannot resolve ${host}${cause instanceof Error && 'code' in cause ? ` (${String(cause.code)})` : ''}`, { cause });
    this.name = 'NameResolutionError';
  }
}
