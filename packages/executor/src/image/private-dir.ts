import fs from 'node:fs/promises';

/**
 * Makes `dir` (and missing parents) a directory only root can enter, mode 0700 also when an older
 * executor made it 0755; returns it. Used for the image cache — read only by the executor as root:
 * steps see an unpacked image through an overlay mounted by root (overlayfs checks the mounter's
 * credentials on the lower layer), never through the cache path, so no mapped id needs to traverse
 * it — and for runtime state, which holds every step's configuration and env.
 */
export async function privateDir(dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
  return dir;
}
