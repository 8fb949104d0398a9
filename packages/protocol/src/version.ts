import { SandfleetError } from './errors.js';

/**
 * Decides whether an executor understands the v2 Job payload: semver >= 4.3.0, an insiders build
 * dated on or after 2022-11-24, or a dev build.
 */
export class InvalidVersionError extends SandfleetError {
  constructor(readonly version: string) {
    super(`failed to check version "${version}": Invalid Semantic Version`);
  }
}

const SEMVER = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;
const INSIDERS = /^\d+_(\d{4}-\d{2}-\d{2})_[0-9a-f]+$/;

export function supportsJobPayloadV2(version: string): boolean {
  if (version === '') return false;
  if (version === 'dev' || version === '0.0.0+dev') return true;
  const insiders = INSIDERS.exec(version);
  if (insiders) return insiders[1]! >= '2022-11-24';
  const m = SEMVER.exec(version);
  if (!m) throw new InvalidVersionError(version);
  const [major, minor, patch] = [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
  if (major !== 4) return major > 4;
  return minor > 3 || (minor === 3 && patch >= 0);
}
