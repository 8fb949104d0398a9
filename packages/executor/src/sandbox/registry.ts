import type { RuntimeDeps } from './shared/host.js';
import type { Runtime, RuntimeConfig, RuntimeName } from './runtime.js';

/**
 * Every runtime by name, each module imported only when that runtime is asked for: an executor
 * that runs bwrap never loads the docker or VM code, and a runtime whose module fails to load
 * affects only itself.
 */

/** What a runtime is built with besides its config. Tests inject a shared ImageStore or a test uplink. */
export type RuntimeOptions = Partial<Omit<RuntimeDeps, 'config'>>;

type RuntimeLoader = (config: RuntimeConfig, options: RuntimeOptions) => Promise<Runtime>;

async function deps(config: RuntimeConfig, options: RuntimeOptions): Promise<RuntimeDeps> {
  const { makeRuntimeDeps } = await import('./shared/host.js');
  return makeRuntimeDeps(config, options);
}

const LOADERS: Record<RuntimeName, RuntimeLoader> = {
  shell: async (_config, options) => new (await import('./shell.js')).ShellRuntime(options.host?.path),
  bwrap: async (config, options) => new (await import('./oci/bwrap.js')).BwrapRuntime(await deps(config, options)),
  oci: async (config, options) => new (await import('./oci/oci.js')).OciRuntime(await deps(config, options), config.ociBinary),
  gvisor: async (config, options) => new (await import('./oci/gvisor.js')).GvisorRuntime(await deps(config, options)),
  docker: async (config, options) => new (await import('./docker/docker.js')).DockerRuntime(await deps(config, options)),
  qemu: async (config, options) => new (await import('./vm/qemu-runtime.js')).QemuRuntime(await deps(config, options)),
  firecracker: async (config, options) => new (await import('./vm/firecracker.js')).FirecrackerRuntime(await deps(config, options)),
};

/** Loads and builds the runtime called `name`. */
export function loadRuntime(name: RuntimeName, config: RuntimeConfig, options: RuntimeOptions = {}): Promise<Runtime> {
  return LOADERS[name](config, options);
}
