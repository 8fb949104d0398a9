import { BLOCKED_V4 } from './policy.js';

export interface FirewallOptions {
  /** Resolvers the job may query on port 53 even when they sit in a blocked range. */
  dnsServers: string[];
  /** More addresses to block: the host's own. */
  extraBlocked: string[];
  /** The job's own address: anything else arriving from the job is spoofed. */
  jobAddress: string;
}

/**
 * The egress policy of a job's router namespace, as one nft ruleset. The router sits between the
 * job (`j0`) and the uplink (`up0`): it forwards the job's traffic to public addresses and DNS
 * servers, and rejects everything else — private ranges, link-local (cloud metadata), loopback,
 * CGNAT, multicast, the host's own addresses and other jobs — over every protocol, with an ICMP
 * admin-prohibited answer so the job fails fast instead of timing out. Nothing may reach the router
 * itself, and nothing from the uplink may open a connection into the job.
 * A packet from the job with any source but the job's address is dropped silently before all
 * else: a job with its own root (a microVM guest) can pick its source, and a rejection's ICMP error,
 * which quotes the packet, would go out of the uplink to the address it claimed — a way to send
 * bytes to a private address.
 */
export function routerRuleset(options: FirewallOptions): string {
  const blocked = [...BLOCKED_V4, ...options.extraBlocked.filter((a) => !a.includes(':'))];
  const dns = options.dnsServers.filter((a) => !a.includes(':'));
  const dnsRules = dns.length
    ? `    iifname "j0" oifname "up0" ip daddr @dns4 udp dport 53 accept
    iifname "j0" oifname "up0" ip daddr @dns4 tcp dport 53 accept\n`
    : '';
  return `table inet sandfleet {
  set blocked4 { type ipv4_addr; flags interval; auto-merge; elements = { ${blocked.join(', ')} } }
${dns.length ? `  set dns4 { type ipv4_addr; elements = { ${dns.join(', ')} } }\n` : ''}  chain forward {
    type filter hook forward priority 0; policy drop;
    iifname "j0" ip saddr != ${options.jobAddress} counter drop comment "spoofed"
    iifname "up0" oifname "j0" ct state established,related accept
${dnsRules}    iifname "j0" meta nfproto ipv6 counter reject with icmpx type admin-prohibited
    iifname "j0" ip daddr @blocked4 counter reject with icmpx type admin-prohibited
    iifname "j0" oifname "up0" ct state new,established,related accept
    iifname "j0" counter reject with icmpx type admin-prohibited
  }
  chain input {
    type filter hook input priority 0; policy drop;
    iifname "lo" accept
    iifname "j0" ip saddr != ${options.jobAddress} counter drop comment "spoofed"
    iifname "up0" ct state established,related accept
    iifname "j0" counter reject with icmpx type admin-prohibited
  }
}
table ip sandfleet_nat {
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    oifname "up0" masquerade
  }
}
`;
}
