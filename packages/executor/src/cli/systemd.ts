import fs from 'node:fs';
import path from 'node:path';
import sea from 'node:sea';
import { SandfleetError } from '@sandfleet/protocol';

/**
 * systemd units and their environment files, as `executor install systemd` and
 * `sandfleet install systemd` write them: rendering with systemd's quoting, and writing that keeps
 * secrets out of reach (the environment file is created 0600 before anything is written to it).
 */

export const SYSTEMD_UNIT_DIR = '/etc/systemd/system';

export class UnitValueError extends SandfleetError {}

/** A unit section: `[key, value]` settings, and `# ...` comment lines that say why. */
export type UnitSection = Array<[string, string] | `# ${string}`>;

export function renderUnit(sections: Record<string, UnitSection>): string {
  const blocks = Object.entries(sections).map(([name, lines]) => [`[${name}]`, ...lines.map((l) => (typeof l === 'string' ? l : `${l[0]}=${l[1]}`))].join('\n'));
  return `${blocks.join('\n\n')}\n`;
}

/** Control characters (a newline above all) would end or split a setting. */
function refuseControlCharacters(name: string, value: string): void {
  if (/[\x00-\x1f\x7f]/.test(value)) throw new UnitValueError(`${name} holds a control character (a newline?); systemd cannot take it in one line`);
}

/**
 * An EnvironmentFile: `NAME="value"` per line. systemd reads a double-quoted value with `\\`, `"`,
 * `$` and `` ` `` escaped by a backslash, as sh does, and expands nothing in it.
 */
export function environmentFileText(settings: ReadonlyArray<readonly [string, string]>): string {
  const lines = settings.map(([name, value]) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new UnitValueError(`${JSON.stringify(name)} is not a variable name`);
    refuseControlCharacters(name, value);
    return `${name}="${value.replace(/[\\"$`]/g, (c) => `\\${c}`)}"`;
  });
  return `${lines.join('\n')}\n`;
}

/**
 * An ExecStart= command line, quoted when needed: `%` escaped everywhere (no specifiers), `$` in the
 * arguments (no variables; systemd expands none in the program's path).
 */
export function execLine(argv: readonly string[]): string {
  return argv
    .map((arg, i) => {
      refuseControlCharacters('a command argument', arg);
      const specifiersEscaped = arg.replace(/%/g, '%%');
      const escaped = i === 0 ? specifiersEscaped : specifiersEscaped.replace(/\$/g, '$$$$');
      return /^[\w@%+=:,./-]+$/.test(escaped) ? escaped : `"${escaped.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
    })
    .join(' ');
}

/**
 * How this very program was started, to put in ExecStart=: the standalone binary alone, or node
 * with the script it runs (a checkout's bin/*.js, a bundle's .cjs).
 */
export function selfCommand(): string[] {
  if (sea.isSea()) return [process.execPath];
  return [process.execPath, path.resolve(process.argv[1] ?? '')];
}

export interface UnitFile {
  path: string;
  content: string;
  /** 0o600 for files holding secrets. */
  mode: number;
}

/**
 * Writes each file unless it already holds `content` with `mode`, and reports what it did. A
 * file is written to a new name created with its mode, then renamed over the old one: a secret
 * never sits in a file others may read, not even for a moment.
 */
export function installUnitFiles(files: readonly UnitFile[], options: { dryRun: boolean; write: (line: string) => void }): void {
  for (const file of files) {
    options.write(`→ ${file.path} (mode ${file.mode.toString(8).padStart(4, '0')})`);
    options.write(`  ${writeIfChanged(file, options.dryRun)}`);
  }
}

function writeIfChanged(file: UnitFile, dryRun: boolean): string {
  const current = readIfPresent(file.path);
  if (current && current.content === file.content && current.mode === file.mode) return 'already up to date';
  const verb = current ? 'updated' : 'written';
  if (dryRun) return `would be ${verb}`;
  fs.mkdirSync(path.dirname(file.path), { recursive: true });
  const tmp = `${file.path}.${process.pid}.tmp`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, file.mode);
  try {
    fs.fchmodSync(fd, file.mode); // the umask may have taken bits off
    fs.writeFileSync(fd, file.content);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file.path);
  return verb;
}

function readIfPresent(file: string): { content: string; mode: number } | undefined {
  try {
    return { content: fs.readFileSync(file, 'utf8'), mode: fs.statSync(file).mode & 0o7777 };
  } catch {
    return undefined;
  }
}
