import { must } from './commands.js';
import { TRANSIT_RANGE } from './uplink.js';

export const HOST_TABLE = 'sandfleet_host';

/**
 * The host side of every job's uplink, table `inet sandfleet_host`: it masquerades job traffic,
 * and drops anything a router sends to the host itself or that arrives unasked for a job. Its
 * rules match every uplink veth by name (`sfu*`), so starting or ending a job never changes it:
 * it is installed once per executor process, at the first job that needs it.
 */
export function hostRuleset(): string {
  return `table inet ${HOST_TABLE} {
  chain forward { type filter hook forward priority -10; policy accept;
    iifname "sfu*" ip saddr ${TRANSIT_RANGE} accept
    oifname "sfu*" ct state established,related accept
    oifname "sfu*" drop
  }
  chain input { type filter hook input priority -10; policy accept;
    iifname "sfu*" ct state established,related accept
    iifname "sfu*" drop
  }
  chain postrouting { type nat hook postrouting priority 100; policy accept;
    ip saddr ${TRANSIT_RANGE} oifname != "sfu*" masquerade
  }
}
`;
}

/**
 * Installs the host table in one nft transaction that creates it if missing, deletes it and adds
 * the current version: packets see either the old rules or the new ones, never none, so other
 * executor processes' running jobs stay filtered while this one starts (or upgrades the rules).
 */
export class HostFirewall {
  private installed: Promise<void> | undefined;

  /** `exec` runs nft and sysctl where the table belongs: the host, or a test namespace. */
  constructor(private readonly exec: (argv: string[]) => string[] = (argv) => argv) {}

  /** Installs the table the first time it is called; later calls wait for that. */
  ensure(): Promise<void> {
    if (!this.installed) {
      this.installed = this.install();
      this.installed.catch(() => (this.installed = undefined));
    }
    return this.installed;
  }

  /** Forwarding on, and one atomic replacement of the table. */
  async install(): Promise<void> {
    await must(this.exec(['sysctl', '-qw', 'net.ipv4.ip_forward=1']));
    await must(this.exec(['nft', '-f', '-']), `table inet ${HOST_TABLE}\ndelete table inet ${HOST_TABLE}\n${hostRuleset()}`);
  }
}
