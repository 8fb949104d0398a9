import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { SandfleetError } from '@sandfleet/protocol';
import { readAsset } from '../../assets.js';
import { capture, runProcess } from '../../process/run.js';
import { SYSTEM_PATH } from './host.js';

/**
 * Syscall filtering for bwrap and runc/crun: one maintained allow-list, the containers/common
 * default profile (Debian: golang-github-containers-common), read at run time. It is in Docker's
 * profile format, whose rules depend on the architecture and on the container's capabilities;
 * `resolveSeccomp` evaluates those conditions the way Docker does and yields the OCI
 * `linux.seccomp` section. runc and crun compile that themselves; for bwrap, `seccompBpf` compiles
 * it with libseccomp (python3-seccomp) into the classic BPF program `bwrap --seccomp` loads.
 * gVisor is not filtered this way: its own kernel serves the syscalls. Without the profile, the
 * runtimes that need it are unavailable — they never run steps unfiltered.
 */
export const SECCOMP_PROFILE = '/usr/share/containers/seccomp.json';
export const SECCOMP_PACKAGE = 'golang-github-containers-common';
export const SECCOMP_BPF_PACKAGE = 'python3-seccomp';

/** The compiler's source, passed with `python3 -c` (a standalone binary has no file to point at). */
const COMPILER = new URL('./seccomp-bpf.py', import.meta.url);
/** Debian's python3 (where python3-seccomp installs), not whatever python3 comes first on PATH. */
const PYTHON = '/usr/bin/python3';

export class SeccompUnavailableError extends SandfleetError {}

interface ProfileCondition {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

interface ProfileRule {
  names?: string[];
  name?: string;
  action: string;
  errnoRet?: number;
  args?: OciSeccompArg[] | null;
  includes?: ProfileCondition;
  excludes?: ProfileCondition;
}

/** A Docker/containers seccomp profile (the parts we use). */
export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  archMap?: { architecture: string; subArchitectures?: string[] }[];
  syscalls: ProfileRule[];
}

export interface OciSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

/** The OCI runtime spec's `linux.seccomp`. */
export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: { names: string[]; action: string; errnoRet?: number; args?: OciSeccompArg[] }[];
}

/** Reads and checks the profile; SeccompUnavailableError when it is missing or malformed. */
export function loadSeccompProfile(file = SECCOMP_PROFILE): SeccompProfile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new SeccompUnavailableError(`no seccomp profile at ${file} (apt-get install ${SECCOMP_PACKAGE}; or executor install)`);
  }
  let profile: SeccompProfile;
  try {
    profile = JSON.parse(text) as SeccompProfile;
  } catch (err) {
    throw new SeccompUnavailableError(`seccomp profile ${file} is not JSON: ${(err as Error).message}`);
  }
  if (typeof profile.defaultAction !== 'string' || !Array.isArray(profile.syscalls)) {
    throw new SeccompUnavailableError(`seccomp profile ${file} has no defaultAction or syscalls`);
  }
  // An allow-list is the point: a default-allow profile would only deny what it names.
  if (profile.defaultAction === 'SCMP_ACT_ALLOW') throw new SeccompUnavailableError(`seccomp profile ${file} allows by default`);
  return profile;
}

/** Node's process.arch → the Go architecture names profiles use in `arches`. */
const GO_ARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', mips64el: 'mips64le' };
/** Node's process.arch → libseccomp's native architecture token. */
const SCMP_ARCH: Record<string, string> = { x64: 'SCMP_ARCH_X86_64', ia32: 'SCMP_ARCH_X86', arm64: 'SCMP_ARCH_AARCH64', arm: 'SCMP_ARCH_ARM', ppc64: 'SCMP_ARCH_PPC64LE', s390x: 'SCMP_ARCH_S390X', riscv64: 'SCMP_ARCH_RISCV64' };

export interface SeccompTarget {
  /** The capabilities the sandboxed process holds (bounding set). */
  caps: readonly string[];
  arch?: string;
  /** `uname -r`, for rules with `minKernel`. */
  kernel?: string;
}

function kernelAtLeast(kernel: string, min: string): boolean {
  const [a, b] = [kernel, min].map((v) => v.split(/[.-]/).slice(0, 2).map((n) => Number.parseInt(n, 10) || 0));
  return a![0]! > b![0]! || (a![0] === b![0] && a![1]! >= b![1]!);
}

/**
 * The profile's rules that apply to a process with `target.caps` on this architecture, as an OCI
 * seccomp section. Like Docker: a rule is dropped when the architecture is excluded or not among
 * those it includes, when the process has any capability it excludes or lacks one it includes,
 * or when the kernel is older than its minKernel.
 */
export function resolveSeccomp(profile: SeccompProfile, target: SeccompTarget): OciSeccomp {
  const arch = target.arch ?? process.arch;
  const goArch = GO_ARCH[arch] ?? arch;
  const kernel = target.kernel ?? fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  const caps = new Set(target.caps);
  const native = SCMP_ARCH[arch];
  const entry = profile.archMap?.find((m) => m.architecture === native);
  const architectures = entry ? [entry.architecture, ...(entry.subArchitectures ?? [])] : native ? [native] : [];
  const applies = (rule: ProfileRule): boolean => {
    const inc = rule.includes ?? {};
    const exc = rule.excludes ?? {};
    if (exc.arches?.includes(goArch)) return false;
    if (inc.arches?.length && !inc.arches.includes(goArch)) return false;
    if (exc.caps?.some((c) => caps.has(c))) return false;
    if (inc.caps?.length && !inc.caps.every((c) => caps.has(c))) return false;
    if (inc.minKernel && !kernelAtLeast(kernel, inc.minKernel)) return false;
    return true;
  };
  const syscalls = profile.syscalls.filter(applies).map((rule) => ({
    names: rule.names ?? (rule.name ? [rule.name] : []),
    action: rule.action,
    ...(rule.errnoRet !== undefined ? { errnoRet: rule.errnoRet } : {}),
    ...(rule.args?.length ? { args: rule.args.map((a) => ({ index: a.index, value: a.value, valueTwo: a.valueTwo ?? 0, op: a.op })) } : {}),
  }));
  const resolved = {
    defaultAction: profile.defaultAction,
    ...(profile.defaultErrnoRet !== undefined ? { defaultErrnoRet: profile.defaultErrnoRet } : {}),
    architectures,
    syscalls,
  };
  return caps.has('CAP_SYS_ADMIN') ? resolved : withoutNewUserNamespaces(resolved, goArch);
}

const CLONE_NEWUSER = 0x10000000;
const ENOSYS = 38;

/**
 * containers/common's profile lets any process create user namespaces (podman's rootless
 * containers need that); a step has no business doing so, and a new user namespace is how an
 * unprivileged process reaches the kernel's root-only code (mounts, netfilter, …). Like Docker's
 * profile for a container without CAP_SYS_ADMIN: clone and unshare are allowed only without
 * CLONE_NEWUSER, and clone3, whose flags sit in memory a filter cannot read, reports ENOSYS so
 * libc falls back to clone.
 */
function withoutNewUserNamespaces(seccomp: OciSeccomp, goArch: string): OciSeccomp {
  const guarded = ['clone', 'clone3', 'unshare'];
  const syscalls = seccomp.syscalls
    .map((rule) => (rule.action === 'SCMP_ACT_ALLOW' ? { ...rule, names: rule.names.filter((n) => !guarded.includes(n)) } : rule))
    .filter((rule) => rule.names.length > 0);
  const noNewUser = (index: number): OciSeccompArg[] => [{ index, value: CLONE_NEWUSER, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }];
  // s390's clone takes the stack first and the flags second.
  const cloneFlags = goArch === 's390x' ? 1 : 0;
  syscalls.push(
    { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: noNewUser(cloneFlags) },
    { names: ['unshare'], action: 'SCMP_ACT_ALLOW', args: noNewUser(0) },
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
  );
  return { ...seccomp, syscalls };
}

const compiled = new Map<string, Promise<string>>();

/**
 * The path of a BPF program (for `bwrap --seccomp`) compiled from `seccomp`: compiled once per
 * executor process and section, cached in `<stateDir>/seccomp/` (0600: only root opens it, before
 * dropping to the sandbox's uid).
 */
export function seccompBpf(stateDir: string, seccomp: OciSeccomp): Promise<string> {
  const json = JSON.stringify(seccomp);
  const file = path.join(stateDir, 'seccomp', `${createHash('sha256').update(json).digest('hex').slice(0, 16)}.bpf`);
  let done = compiled.get(file);
  if (!done) {
    done = compileBpf(json, file);
    compiled.set(file, done);
    done.catch(() => compiled.delete(file));
  }
  return done;
}

async function compileBpf(json: string, file: string): Promise<string> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const r = await runProcess({ argv: [PYTHON, '-c', readAsset(COMPILER)], env: { PATH: SYSTEM_PATH }, stdin: json, onStdout: (c) => out.push(c), onStderr: (c) => err.push(c) });
  const stderr = Buffer.concat(err).toString();
  if (r.exitCode !== 0) {
    const why = stderr.includes("No module named 'seccomp'") ? `${SECCOMP_BPF_PACKAGE} is not installed (apt-get install ${SECCOMP_BPF_PACKAGE}; or executor install bwrap)` : stderr.trim();
    throw new SeccompUnavailableError(`cannot compile the seccomp profile: ${why}`);
  }
  await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, Buffer.concat(out), { mode: 0o600 });
  await fsp.rename(tmp, file);
  return file;
}

/** Whether libseccomp's Python binding is there (bwrap needs it to compile the profile). */
export async function seccompCompilerPresent(): Promise<boolean> {
  const r = await capture([PYTHON, '-c', 'import seccomp'], { env: { PATH: SYSTEM_PATH } }).catch(() => undefined);
  return r?.exitCode === 0;
}
