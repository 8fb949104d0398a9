import fs from 'node:fs/promises';
import path from 'node:path';
import { ID_RANGE, ID_SHIFT } from '../../image/ids.js';
import { capture } from '../../process/run.js';
import { SYSTEM_PATH } from '../shared/host.js';

/**
 * Host set-up for Docker's `--userns-remap`, shared by `executor install docker` and the test
 * fixture that starts a private dockerd: a system user whose /etc/subuid and /etc/subgid ranges
 * the daemon maps container ids onto, and `"userns-remap"` in daemon.json. Every function is
 * idempotent, says what it did (or, with `dryRun`, would do) and changes nothing in a dry run.
 *
 * The user is Docker's own default name, so a host already set up with `"userns-remap": "default"`
 * is recognised as done. Its range is the one the other runtimes map image ids onto (100000+), so
 * a job's files look the same on the host whichever runtime ran it — unless another owner already
 * holds that range, in which case the first free range above all others is taken.
 */
export const REMAP_USER = 'dockremap';
export const DAEMON_JSON = '/etc/docker/daemon.json';

export interface SubIdRange {
  /** User name or numeric uid, as written in the file. */
  owner: string;
  start: number;
  count: number;
}

export interface SubIdFiles {
  subuid: string;
  subgid: string;
}

export const HOST_SUBID_FILES: SubIdFiles = { subuid: '/etc/subuid', subgid: '/etc/subgid' };

const ENV = { PATH: SYSTEM_PATH };

export function parseSubIds(text: string): SubIdRange[] {
  return text.split('\n').flatMap((line) => {
    const [owner, start, count] = line.trim().split(':');
    if (!owner || !/^\d+$/.test(start ?? '') || !/^\d+$/.test(count ?? '')) return [];
    return [{ owner, start: Number(start), count: Number(count) }];
  });
}

const overlaps = (a: { start: number; count: number }, b: { start: number; count: number }) => a.start < b.start + b.count && b.start < a.start + a.count;

/** ID_SHIFT when no range overlaps it, else the first ID_RANGE-aligned start above every range. */
export function freeStart(taken: readonly SubIdRange[]): number {
  const wanted = { start: ID_SHIFT, count: ID_RANGE };
  if (!taken.some((r) => overlaps(r, wanted))) return ID_SHIFT;
  const end = Math.max(...taken.map((r) => r.start + r.count));
  return Math.ceil(end / ID_RANGE) * ID_RANGE;
}

async function readText(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}

async function appendLine(file: string, line: string): Promise<void> {
  const text = await readText(file);
  await fs.appendFile(file, `${text && !text.endsWith('\n') ? '\n' : ''}${line}\n`, { mode: 0o644 });
}

/**
 * Gives `user` one range in each of /etc/subuid and /etc/subgid, starting at the same id (the
 * docker runtime maps image uids and gids with one shift). Returns what it found or did.
 */
export async function ensureSubIds(user: string, uid: number | undefined, dryRun: boolean, files: SubIdFiles = HOST_SUBID_FILES): Promise<string> {
  const uids = parseSubIds(await readText(files.subuid));
  const gids = parseSubIds(await readText(files.subgid));
  const mine = (r: SubIdRange) => r.owner === user || (uid !== undefined && r.owner === String(uid));
  const haveUid = uids.find(mine);
  const haveGid = gids.find(mine);
  if (haveUid && haveGid) {
    if (haveUid.start !== haveGid.start) throw new Error(`${user} has sub-uids from ${haveUid.start} but sub-gids from ${haveGid.start}; the docker runtime needs both ranges to start at the same id`);
    return `already done (${user}:${haveUid.start}:${haveUid.count})${overlapWarning(haveUid, [...uids, ...gids].filter((r) => !mine(r)))}`;
  }
  const others = [...uids, ...gids].filter((r) => !mine(r));
  // Keep an existing half when the other file has room for the same start.
  const start = haveUid?.start ?? haveGid?.start ?? freeStart(others);
  const range = { owner: user, start, count: haveUid?.count ?? haveGid?.count ?? ID_RANGE };
  const line = `${user}:${range.start}:${range.count}`;
  const targets = [...(haveUid ? [] : [files.subuid]), ...(haveGid ? [] : [files.subgid])];
  if (dryRun) return `would add ${line} to ${targets.join(' and ')}${overlapWarning(range, others)}`;
  for (const file of targets) await appendLine(file, line);
  return `added ${line} to ${targets.join(' and ')}${overlapWarning(range, others)}`;
}

function overlapWarning(range: SubIdRange, others: readonly SubIdRange[]): string {
  const clash = others.filter((r) => overlaps(r, range));
  if (clash.length === 0) return '';
  // Not fatal (an administrator may share ranges on purpose), but whoever owns an overlapping
  // range can map those host ids into a namespace of their own and reach the jobs' files.
  return `; WARNING: overlaps ${clash.map((r) => `${r.owner}:${r.start}:${r.count}`).join(', ')}`;
}

async function lookupUid(user: string): Promise<number | undefined> {
  const r = await capture(['getent', 'passwd', user], { env: ENV });
  const uid = r.exitCode === 0 ? r.stdout.split(':')[2] : undefined;
  return uid !== undefined && /^\d+$/.test(uid) ? Number(uid) : undefined;
}

/** The remap user (a system user with its own group, no home, no shell) and its sub-id ranges. */
export async function ensureRemapUser(options: { dryRun: boolean; user?: string; files?: SubIdFiles }): Promise<string> {
  const user = options.user ?? REMAP_USER;
  const done: string[] = [];
  let uid = await lookupUid(user);
  if (uid === undefined) {
    if (options.dryRun) {
      done.push(`would create system user ${user}`);
    } else {
      // dockerd looks the group up by the user's name for /etc/subgid, hence --user-group.
      const r = await capture(['useradd', '--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', user], { env: ENV });
      // Exit 9: created meanwhile by someone else; fine.
      if (r.exitCode !== 0 && r.exitCode !== 9) throw new Error(`useradd ${user} failed (exit ${r.exitCode}): ${r.stderr.trim()}`);
      uid = await lookupUid(user);
      done.push(`created system user ${user}`);
    }
  } else {
    done.push(`user ${user} exists`);
  }
  done.push(await ensureSubIds(user, uid, options.dryRun, options.files));
  return done.join('; ');
}

/**
 * Sets `"userns-remap": "<user>"` in daemon.json, keeping every other key. An existing non-empty
 * value is left alone: any remapping keeps container root off host root, and the runtime reads
 * the actual ids from the daemon. dockerd refuses to start when the same option is also given as
 * a flag, so this is the one place it should be set.
 */
export async function configureDaemonJson(options: { dryRun: boolean; user?: string; file?: string }): Promise<string> {
  const file = options.file ?? DAEMON_JSON;
  const user = options.user ?? REMAP_USER;
  const text = await readText(file);
  let config: Record<string, unknown> = {};
  if (text.trim()) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new Error(`${file} is not valid JSON (${err instanceof Error ? err.message : String(err)}); fix it by hand`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${file} is not a JSON object`);
    config = parsed as Record<string, unknown>;
  }
  const current = config['userns-remap'];
  if (typeof current === 'string' && current !== '') return `already done ("userns-remap": "${current}")`;
  if (options.dryRun) return `would set "userns-remap": "${user}" in ${file}`;
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.sandfleet-${process.pid}`;
  await fs.writeFile(tmp, `${JSON.stringify({ ...config, 'userns-remap': user }, null, 2)}\n`, { mode: 0o644 });
  await fs.rename(tmp, file);
  return `set "userns-remap": "${user}" in ${file} (takes effect when dockerd restarts)`;
}
