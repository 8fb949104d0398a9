import { loadRuntime, type RuntimeOptions } from './registry.js';
import { RUNTIME_NAMES, RuntimeUnavailableError, type Availability, type Runtime, type RuntimeConfig, type RuntimeName } from './runtime.js';

/**
 * Strongest first; `auto` takes the first that is available. `shell` is never in this list. `qemu`
 * counts only with KVM (its probe sets notForAuto under TCG, which is many times slower than gVisor).
 */
export const AUTO_ORDER: readonly RuntimeName[] = ['firecracker', 'qemu', 'gvisor', 'oci', 'bwrap'];

/**
 * Builds a runtime. `options` carry the executor's host environment, and exist for tests and
 * embedders: a shared ImageStore, or an Uplink other than the host's default route (tests connect
 * job networks to a test namespace).
 */
export function createRuntime(name: RuntimeName, config: RuntimeConfig, options: RuntimeOptions = {}): Promise<Runtime> {
  return loadRuntime(name, config, options);
}

export interface RuntimeReport {
  name: RuntimeName;
  availability: Availability;
}

/** Probes every runtime, for `executor validate` and for `auto`. */
export async function probeRuntimes(config: RuntimeConfig, options: RuntimeOptions = {}): Promise<RuntimeReport[]> {
  return Promise.all(
    RUNTIME_NAMES.map(async (name) => ({ name, availability: await (await createRuntime(name, config, options)).probe() })),
  );
}

export interface Selection {
  runtime: Runtime;
  /** Why this runtime was chosen, printed at start. */
  reason: string;
}

export async function selectRuntime(config: RuntimeConfig, options: RuntimeOptions = {}): Promise<Selection> {
  if (config.runtime !== 'auto') {
    const runtime = await createRuntime(config.runtime, config, options);
    const availability = await runtime.probe();
    if (!availability.available) throw new RuntimeUnavailableError(config.runtime, availability.reason);
    return { runtime, reason: `EXECUTOR_RUNTIME=${config.runtime}: ${availability.reason}` };
  }
  const skipped: string[] = [];
  for (const name of AUTO_ORDER) {
    const runtime = await createRuntime(name, config, options);
    const availability = await runtime.probe();
    if (availability.available && availability.notForAuto) {
      skipped.push(`${name}: ${availability.notForAuto}`);
      continue;
    }
    if (availability.available) {
      return { runtime, reason: `auto picked ${name}: ${availability.reason}${skipped.length ? ` (skipped ${skipped.join('; ')})` : ''}` };
    }
    skipped.push(`${name}: ${availability.reason}`);
  }
  throw new RuntimeUnavailableError('shell', `auto found no isolating runtime (${skipped.join('; ')}); install one (executor install) or set EXECUTOR_RUNTIME=shell explicitly`);
}
