import path from 'node:path';
import { makeTempDir } from '@sandfleet/test-helpers';
import { buildGuestImage, downloadGuestPackages, type GuestImage, type GuestPackages } from '../../src/sandbox/vm/guest-image.js';

/** Guest images outlive test runs here (keyed by their input digest), outside the repository. */
export const VM_IMAGE_CACHE = '/var/cache/sandfleet-test/vm-image';

let packages: Promise<GuestPackages> | undefined;

/** The guest's Debian packages, downloaded with apt once per test file into a temp directory. */
export function guestPackages(): Promise<GuestPackages> {
  packages ??= downloadGuestPackages(path.join(makeTempDir('sandfleet-vm-debs-', { untilFileEnds: true }), 'debs'));
  return packages;
}

export async function cachedGuestImage(): Promise<GuestImage & { cached: boolean }> {
  return buildGuestImage(await guestPackages(), VM_IMAGE_CACHE);
}
