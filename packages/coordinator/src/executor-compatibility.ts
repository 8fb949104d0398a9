/**
 * Whether an executor's version suits this coordinator, decided as Sourcegraph's executors page
 * does: no verdict (null) for an inactive executor, a dev build on either side, or versions that
 * cannot be compared; semver versions must share the major version and be at most one minor
 * version apart; insiders builds (`<build>_<YYYY-MM-DD>_<sha>`) must be built within 35 days of
 * each other. An insiders executor against a release coordinator counts as ahead, the reverse as
 * outdated.
 */
export type ExecutorCompatibility = 'outdated' | 'up-to-date' | 'version-ahead';

const SEMVER = /^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;
const INSIDERS_DATE = /^[\w-]+_(\d{4}-\d{2}-\d{2})_\w+/;
const RELEASE_CYCLE_DAYS = 35;
const DAY_MS = 24 * 60 * 60 * 1000;

function isDevBuild(version: string): boolean {
  return version === 'dev' || version === '0.0.0+dev' || version.startsWith('0.0.0');
}

export function executorCompatibility(executorVersion: string, coordinatorVersion: string, active: boolean): ExecutorCompatibility | null {
  if (!active || executorVersion === '' || isDevBuild(executorVersion) || isDevBuild(coordinatorVersion)) return null;
  const executorDate = INSIDERS_DATE.exec(executorVersion)?.[1];
  const coordinatorDate = INSIDERS_DATE.exec(coordinatorVersion)?.[1];
  if (executorDate && !coordinatorDate) return 'version-ahead';
  if (!executorDate && coordinatorDate) return 'outdated';
  if (executorDate && coordinatorDate) return compareBuildDates(executorDate, coordinatorDate);
  const executor = SEMVER.exec(executorVersion);
  const coordinator = SEMVER.exec(coordinatorVersion);
  if (!executor || !coordinator) return null;
  const [em, en] = [Number(executor[1]), Number(executor[2])];
  const [cm, cn] = [Number(coordinator[1]), Number(coordinator[2])];
  if (em !== cm) return em < cm ? 'outdated' : 'version-ahead';
  if (en < cn - 1) return 'outdated';
  if (en > cn + 1) return 'version-ahead';
  return 'up-to-date';
}

function compareBuildDates(executorDate: string, coordinatorDate: string): ExecutorCompatibility | null {
  const executor = Date.parse(`${executorDate}T00:00:00Z`);
  const coordinator = Date.parse(`${coordinatorDate}T00:00:00Z`);
  if (Number.isNaN(executor) || Number.isNaN(coordinator)) return null;
  const days = (executor - coordinator) / DAY_MS;
  if (days <= -RELEASE_CYCLE_DAYS) return 'outdated';
  if (days >= RELEASE_CYCLE_DAYS) return 'version-ahead';
  return 'up-to-date';
}
