import fs from 'node:fs';
import sea from 'node:sea';

/**
 * Files the executor reads at run time that live next to its sources. The standalone binary
 * (scripts/release.ts) has no sources beside it: there they are embedded under their file name.
 */
export function readAsset(besideSource: URL): string {
  const name = besideSource.pathname.slice(besideSource.pathname.lastIndexOf('/') + 1);
  return sea.isSea() ? sea.getAsset(name, 'utf8') : fs.readFileSync(besideSource, 'utf8');
}
