import fs from 'node:fs';
import { BwrapRuntime } from './oci/bwrap.js';
import { DockerRuntime } from './docker/docker.js';
import { GvisorRuntime } from './oci/gvisor.js';
import { OciRuntime } from './oci/oci.js';
import { makeRuntimeDeps, type RuntimeDeps } from './shared/host.js';
import { ShellRuntime } from './shell.js';
import { RUNTIME_NAMES, RuntimeUnavailableError, type Availability, type Runtime, type RuntimeConfig, type RuntimeName } from './runtime.js';

/** Strongest first; `auto` takes the first that is available. `shell` is never in this list. */
export const AUTO_ORDER: readonly RuntimeName[] = ['firecracker', 'gvisor', 'oci', 'bwrap'];

/**
 * Builds a runtime. `overrides` exist for tests and embedders: a shared ImageStore, or an Uplink
 * other than the host's default route (tests connect job networks to a test namespace).
 */
export function createRuntime(name: RuntimeName, config: RuntimeConfig, overrides: Partial<Omit<RuntimeDeps, 'config'>> = {}): Runtime {
  switch (name) {
    case 'shell':
      return new ShellRuntime();
    case 'bwrap':
      return new BwrapRuntime(makeRuntimeDeps(config, overrides));
    case 'oci':
      return new OciRuntime(makeRuntimeDeps(config, overrides));
    case 'gvisor':
      return new GvisorRuntime(makeRuntimeDeps(config, overrides));
    case 'docker':
      return new DockerRuntime(makeRuntimeDeps(config, overrides));
    case 'firecracker':
      return new FirecrackerRuntime();
  }
}

export interface RuntimeReport {
  name: RuntimeName;
  availability: Availability;
}

/** Probes every runtime, for `executor validate` and for `auto`. */
export async function probeRuntimes(config: RuntimeConfig): Promise<RuntimeReport[]> {
  return Promise.all(
    RUNTIME_NAMES.map(async (name) => ({ name, availability: await createRuntime(name, config).probe() })),
  );
}

export interface Selection {
  runtime: Runtime;
  /** Why this runtime was chosen, printed at start. */
  reason: string;
}

export async function selectRuntime(config: RuntimeConfig): Promise<Selection> {
  if (config.runtime !== 'auto') {
    const runtime = createRuntime(config.runtime, config);
    const availability = await runtime.probe();
    if (!availability.available) throw new RuntimeUnavailableError(config.runtime, availability.reason);
    return { runtime, reason: `EXECUTOR_RUNTIME=${config.runtime}: ${availability.reason}` };
  }
  const skipped: string[] = [];
  for (const name of AUTO_ORDER) {
    const runtime = createRuntime(name, config);
    const availability = await runtime.probe();
    if (availability.available) {
      return { runtime, reason: `auto picked ${name}: ${availability.reason}${skipped.length ? ` (skipped ${skipped.join('; ')})` : ''}` };
    }
    skipped.push(`${name}: ${availability.reason}`);
  }
  throw new RuntimeUnavailableError('shell', `auto found no isolating runtime (${skipped.join('; ')}); install one (executor install) or set EXECUTOR_RUNTIME=shell explicitly`);
}

/** Firecracker needs KVM; this build has no Firecracker driver yet, and says which is missing. */
class FirecrackerRuntime implements Runtime {
  readonly name = 'firecracker' as const;
  readonly isolating = true;
  async probe(): Promise<Availability> {
    const kvm = fs.existsSync('/dev/kvm');
    return { available: false, reason: kvm ? 'not implemented in this build (/dev/kvm is present)' : 'not implemented: no /dev/kvm here (this host is itself a VM without nested virtualisation)' };
  }
  async prepare(): Promise<never> {
    throw new RuntimeUnavailableError(this.name, (await this.probe()).reason);
  }
}
