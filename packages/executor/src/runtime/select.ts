import { ShellRuntime } from './shell.js';
import { RUNTIME_NAMES, RuntimeUnavailableError, type Availability, type Runtime, type RuntimeConfig, type RuntimeName } from './runtime.js';

/** Strongest first; `auto` takes the first that is available. `shell` is never in this list. */
export const AUTO_ORDER: readonly RuntimeName[] = ['firecracker', 'gvisor', 'oci', 'bwrap'];

export function createRuntime(name: RuntimeName, _config: RuntimeConfig): Runtime {
  switch (name) {
    case 'shell':
      return new ShellRuntime();
    default:
      return new UnimplementedRuntime(name);
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

class UnimplementedRuntime implements Runtime {
  readonly isolating = true;
  constructor(readonly name: RuntimeName) {}
  async probe(): Promise<Availability> {
    return { available: false, reason: `the ${this.name} runtime is not implemented in this build` };
  }
  async prepare(): Promise<never> {
    throw new RuntimeUnavailableError(this.name, 'not implemented in this build');
  }
}
