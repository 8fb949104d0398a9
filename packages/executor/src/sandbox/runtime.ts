import type { DockerAuthConfig } from '@sandfleet/protocol';
import { SandfleetError } from '@sandfleet/protocol';
import type { NetworkPolicy } from '../network/policy.js';
import type { WorkspaceRequest } from '../workspace/prepare.js';
import type { ImageStoreOptions } from '../image/pull.js';

/**
 * A runtime turns "run this step script in this image over this workspace" into a sandboxed
 * process. Each job gets one Sandbox (prepare → run steps → teardown); runtimes differ only in how
 * strongly that sandbox is isolated.
 */
export const RUNTIME_NAMES = ['firecracker', 'qemu', 'gvisor', 'oci', 'docker', 'bwrap', 'shell'] as const;
export type RuntimeName = (typeof RUNTIME_NAMES)[number];

export interface Availability {
  available: boolean;
  /** Why it is or is not available: "runsc 20221219 with ptrace platform", "no /dev/kvm", ... */
  reason: string;
  /** Set when the runtime works but `auto` should pass it over, and why (QEMU without KVM is slow). */
  notForAuto?: string;
}

export interface JobLimits {
  /** CPUs for the job; 0 means unbounded. */
  cpus: number;
  /** Memory in bytes; 0 means unbounded. */
  memoryBytes: number;
  /** Maximum number of processes/threads; 0 means unbounded. */
  pids: number;
  /** Disk for the writable layer and workspace, in bytes; 0 means unbounded. */
  diskBytes: number;
}

export type { NetworkPolicy };

/**
 * What a sandbox is prepared with for one job. Limits and the network policy are the runtime's
 * own (RuntimeConfig, given at construction); these are the facts of the job.
 */
export interface SandboxOptions {
  /** Stable, unique id of this attempt (used in sandbox, cgroup and netns names). */
  jobId: string;
  /**
   * An empty host directory for the job's workspace. Runtimes that keep the workspace on the host
   * side make it the sandbox's workspace (steps see it as `/data`), so what is written there after
   * prepare() lands in the sandbox without a copy.
   */
  workspaceDir: string;
  /** The registry credentials decided for this job (the job's own, else the executor's). */
  dockerAuth?: DockerAuthConfig | undefined;
  /** Lines for the job's log that are not step output (e.g. image pull progress). */
  progress: (line: string) => void;
  signal: AbortSignal;
}

export interface StepSpec {
  /** Log key, e.g. `step.docker.0`. */
  key: string;
  /** OCI image reference; runtimes without images (shell) ignore it. */
  image: string;
  /** The step script, relative to the workspace (`.sourcegraph-executor/…sh`); run with `/bin/sh`. */
  scriptPath: string;
  /** Working directory relative to the workspace root ('' for the root). */
  dir: string;
  /** `NAME=value` pairs; the host environment is never passed on. */
  env: string[];
}

export interface StepIO {
  onStdout: (chunk: Buffer) => void;
  onStderr: (chunk: Buffer) => void;
  /** Lines about preparing this step (image pull progress), shown in the step's own log entry. */
  progress?: (line: string) => void;
  signal: AbortSignal;
}

export interface StepResult {
  exitCode: number;
  /** Set when the sandbox knows why the step ended abnormally ("killed: out of memory (limit 64 MiB)"). */
  failure?: string;
  /** The argv that ran, for the log entry (redacted by the caller). */
  command: string[];
}

export interface Sandbox {
  /** Host directory the steps see as `/data`: where the host-side workspace preparation writes. */
  readonly workspaceDir: string;
  /**
   * Builds the job's workspace inside the sandbox (clone, files, step scripts) and returns the
   * step scripts' paths relative to the workspace, by step index. A runtime whose workspace cannot
   * be reached from the host (a microVM's disk, a Kubernetes pod) implements this; without it the
   * shared host-side preparation (workspace/prepare.ts) writes straight into `workspaceDir`.
   */
  prepareWorkspace?(request: WorkspaceRequest, signal: AbortSignal): Promise<string[]>;
  run(step: StepSpec, io: StepIO): Promise<StepResult>;
  teardown(): Promise<void>;
}

export interface Runtime {
  readonly name: RuntimeName;
  /** False only for `shell`: it runs steps directly on the host. */
  readonly isolating: boolean;
  probe(): Promise<Availability>;
  prepare(options: SandboxOptions): Promise<Sandbox>;
  /**
   * Removes what jobs of an executor that died left behind (VMs, their disks and sockets); called
   * at start and every EXECUTOR_CLEANUP_TASK_INTERVAL. Returns what it removed, for the log.
   * Runtimes whose leftovers die with the executor (namespaces, cgroups) have none.
   */
  reapLeftovers?(): Promise<string[]>;
}

/** Raised when a runtime cannot be used on this host; the job is failed with this message. */
export class RuntimeUnavailableError extends SandfleetError {
  constructor(readonly runtime: RuntimeName, readonly reason: string) {
    super(`runtime ${runtime} is not available: ${reason}`);
  }
}

/** What commands started for jobs take from the executor's own environment (read in config.ts). */
export interface HostEnvironment {
  /** PATH: how the shell runtime's steps and host commands (git, src) find their programs. */
  path: string;
  /** HOME, passed on to host commands when set. */
  home: string | undefined;
  /** DOCKER_HOST for the docker runtime's CLI; undefined means docker's default socket. */
  dockerHost: string | undefined;
  /** Set under the node test runner: job networks are then never wired to the host's interfaces. */
  underTestRunner: boolean;
}

/** The part of the executor's configuration that runtimes read (parsed in config.ts). */
/** The OCI CLIs the `oci` runtime can drive. */
export const OCI_BINARIES = ['crun', 'runc'] as const;
export type OciBinary = (typeof OCI_BINARIES)[number];

export interface RuntimeConfig {
  /** EXECUTOR_RUNTIME; `auto` picks the strongest runtime that works here (never `shell`). */
  runtime: RuntimeName | 'auto';
  /** Where image layers, unpacked root filesystems and other runtime state live. */
  stateDir: string;
  /** EXECUTOR_DOCKER_REGISTRY_MIRROR_URL, split on commas. */
  registryMirrorUrls: string[];
  /** EXECUTOR_ALLOWED_PRIVATE_REGISTRIES, EXECUTOR_IMAGE_MAX_SIZE, EXECUTOR_IMAGE_CACHE_SIZE (defaults when unset). */
  imageStore?: ImageStoreOptions | undefined;
  /** EXECUTOR_DOCKER_AUTH_CONFIG; a job's own dockerAuthConfig takes precedence. */
  dockerAuthConfig?: DockerAuthConfig | undefined;
  /** EXECUTOR_NETWORK. */
  network: NetworkPolicy;
  /** EXECUTOR_OCI_RUNTIME: the CLI the `oci` runtime drives; unset means crun when usable, else runc. */
  ociBinary?: OciBinary | undefined;
  limits: JobLimits;
  /** EXECUTOR_MAXIMUM_RUNTIME_PER_JOB: a VM's agent also stops a step at the job's deadline. */
  maxJobRuntimeMs?: number | undefined;
  /** EXECUTOR_FIRECRACKER_BIN and the jailer settings; unset means PATH and the defaults. */
  firecracker?: FirecrackerSettings | undefined;
  /** EXECUTOR_VM_PREFIX: VM directories are `<prefix>-<random>`, and the janitor reaps only its own prefix. @default executor */
  vmPrefix?: string | undefined;
  /** EXECUTOR_VM_WARM_START: the qemu runtime restores each job's VM from a saved idle guest. @default true */
  vmWarmStart?: boolean | undefined;
}

/** How the firecracker runtime finds and confines its VMM (parsed in config.ts). */
export interface FirecrackerSettings {
  /** EXECUTOR_FIRECRACKER_BIN; else `firecracker` on PATH. */
  bin?: string | undefined;
  /** EXECUTOR_FIRECRACKER_JAILER_BIN; else `jailer` beside the firecracker binary or on PATH. */
  jailerBin?: string | undefined;
  /** EXECUTOR_FIRECRACKER_USE_JAILER; the jailer is used when found, the executor is root, and this is true. @default true */
  useJailer: boolean;
  /** EXECUTOR_FIRECRACKER_JAILER_UID / _GID: who Firecracker runs as inside the jail. @default 65534 */
  jailerUid: number;
  jailerGid: number;
}
