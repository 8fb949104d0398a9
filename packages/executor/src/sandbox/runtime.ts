import type { DockerAuthConfig } from '@sandfleet/protocol';
import type { ImageStoreOptions } from '../image/pull.js';

/**
 * A runtime turns "run this step script in this image over this workspace" into a sandboxed
 * process. Each job gets one Sandbox (prepare → run steps → teardown); runtimes differ only in how
 * strongly that sandbox is isolated.
 */
export const RUNTIME_NAMES = ['firecracker', 'gvisor', 'oci', 'docker', 'bwrap', 'shell'] as const;
export type RuntimeName = (typeof RUNTIME_NAMES)[number];

export interface Availability {
  available: boolean;
  /** Why it is or is not available: "runsc 20221219 with ptrace platform", "no /dev/kvm", ... */
  reason: string;
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

/** `public` allows DNS and public addresses; `none` gives the job no network at all. */
export type NetworkPolicy = 'public' | 'none';

export interface SandboxOptions {
  /** Stable, unique id of this attempt (used in sandbox, cgroup and netns names). */
  jobId: string;
  /** Host directory holding the job's files; the step sees it as `/data`. */
  workspaceDir: string;
  limits: JobLimits;
  network: NetworkPolicy;
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
  run(step: StepSpec, io: StepIO): Promise<StepResult>;
  teardown(): Promise<void>;
}

export interface Runtime {
  readonly name: RuntimeName;
  /** False only for `shell`: it runs steps directly on the host. */
  readonly isolating: boolean;
  probe(): Promise<Availability>;
  prepare(options: SandboxOptions): Promise<Sandbox>;
}

/** Raised when a runtime cannot be used on this host; the job is failed with this message. */
export class RuntimeUnavailableError extends Error {
  constructor(readonly runtime: RuntimeName, readonly reason: string) {
    super(`runtime ${runtime} is not available: ${reason}`);
    this.name = 'RuntimeUnavailableError';
  }
}

/** The part of the executor's configuration that runtimes read (parsed in config.ts). */
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
  limits: JobLimits;
}
