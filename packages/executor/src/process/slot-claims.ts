import fs from 'node:fs';
import path from 'node:path';

/**
 * Numbered slots shared by every executor process on a host (uplink slots, VMM ids): a slot is
 * claimed by creating its file `<dir>/<n>` exclusively, holding `owner`, and freed by removing it.
 * Returns the claimed number, trying `first`, `first + 1`, … (wrapping), or undefined when all
 * `count` are taken.
 */
export function claimSlotFile(dir: string, owner: string, count: number, first = 0): number | undefined {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const slot = (first + i) % count;
    try {
      fs.writeFileSync(path.join(dir, String(slot)), owner, { flag: 'wx', mode: 0o600 });
      return slot;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return undefined;
}
