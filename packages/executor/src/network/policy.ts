/**
 * What a job's network may reach. `public` allows DNS and public addresses; `none` gives the job
 * no network at all.
 */
export const NETWORK_POLICIES = ['public', 'none'] as const;
export type NetworkPolicy = (typeof NETWORK_POLICIES)[number];

/**
 * IPv4 ranges a `public` job may never reach, over any protocol: this network, private ranges,
 * CGNAT (which also holds the routers' uplink addresses), loopback, link-local (cloud metadata),
 * IETF protocol assignments, benchmarking, multicast and reserved. The host's own addresses are
 * added per host; DNS servers in these ranges stay reachable on port 53 only. IPv6 is rejected
 * entirely.
 */
export const BLOCKED_V4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '224.0.0.0/4',
  '240.0.0.0/4',
];
