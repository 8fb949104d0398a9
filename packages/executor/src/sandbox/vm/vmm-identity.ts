import fs from 'node:fs';
import path from 'node:path';
import { SandfleetError } from '@sandfleet/protocol';
import { claimSlotFile } from '../../process/slot-claims.js';

/**
 * The unprivileged identity a job's QEMU drops to once it has opened its devices (`-runas`), and
 * the root it is confined to (`-chroot`): its own VM directory, which then holds nothing it may
 * read but its disks (QEMU reopens them by name after an incoming migration, so they are there
 * under relative names, and the workspace disk is given to the VMM's uid). Each running VM gets a
 * uid and gid of its own, so a guest that took over its QEMU is a process that owns only its
 * workspace disk, sees only its own directory, and cannot signal or trace another VM's QEMU. The
 * ids lie above the image runtimes' shifted range (100000–165535).
 *
 * A claim is a file `<runDir>/.vmm-ids/<n>` created exclusively, naming the VM directory that holds
 * it; the VM directory names its claim in `vmm-id`. Teardown and the janitor release it.
 */
export class VmmIdentityError extends SandfleetError {}

export const VMM_ID_BASE = 300_000;
export const VMM_ID_SLOTS = 4096;
const CLAIMS_DIR = '.vmm-ids';
export const VMM_ID_FILE = 'vmm-id';

export interface VmmIdentity {
  uid: number;
  gid: number;
}

/** Claims the lowest free id for the VM in `vmDir`. */
export function claimVmmIdentity(runDir: string, vmDir: string): VmmIdentity {
  const claims = path.join(runDir, CLAIMS_DIR);
  const n = claimSlotFile(claims, vmDir, VMM_ID_SLOTS);
  if (n !== undefined) {
    fs.writeFileSync(path.join(vmDir, VMM_ID_FILE), `${n}\n`, { mode: 0o600 });
    return { uid: VMM_ID_BASE + n, gid: VMM_ID_BASE + n };
  }
  throw new VmmIdentityError(`all ${VMM_ID_SLOTS} VMM ids under ${claims} are claimed (stale claims go when the janitor reaps their VMs)`);
}

/** Releases the claim `vmDir` holds, if any (and only if the claim still names that directory). */
export function releaseVmmIdentity(runDir: string, vmDir: string): void {
  let n: string;
  try {
    n = fs.readFileSync(path.join(vmDir, VMM_ID_FILE), 'utf8').trim();
  } catch {
    return;
  }
  if (!/^\d+$/.test(n)) return;
  const claim = path.join(runDir, CLAIMS_DIR, n);
  try {
    if (fs.readFileSync(claim, 'utf8') === vmDir) fs.rmSync(claim, { force: true });
  } catch {
    // already released
  }
  fs.rmSync(path.join(vmDir, VMM_ID_FILE), { force: true });
}
