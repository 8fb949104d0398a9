/** `executor` child processes talking to a coordinator (or a TestInstance) over HTTP on loopback. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { basicEnv, spawnProcess, type SpawnedProcess } from './processes.js';
import { makeTempDir, removeTempDir } from './temp-dirs.js';

export const EXECUTOR_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../executor/bin/executor.js');

/** `executor <args>` with a minimal environment plus `env`; `nodeArgs` go to node (e.g. `--cpu-prof`). */
export function spawnExecutor(args: string[], env: Record<string, string>, nodeArgs: string[] = []): SpawnedProcess {
  return spawnProcess(process.execPath, [...nodeArgs, EXECUTOR_BIN, ...args], basicEnv(env));
}

export interface ExecutorProcess {
  child: SpawnedProcess['child'];
  output: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

/**
 * `executor run` against `frontendUrl` on queue `batches`, with its own state and workspace
 * directory (removed by stop). `env` adds to or replaces the defaults.
 */
export function startExecutorProcess(frontendUrl: string, accessToken: string, env: Record<string, string> = {}, nodeArgs: string[] = []): ExecutorProcess {
  const stateDir = makeTempDir('sandfleet-e2e-executor-');
  const spawned = spawnExecutor(['run'], {
    HOME: stateDir,
    EXECUTOR_FRONTEND_URL: frontendUrl,
    EXECUTOR_FRONTEND_PASSWORD: accessToken,
    EXECUTOR_QUEUE_NAME: 'batches',
    EXECUTOR_STATE_DIR: stateDir,
    EXECUTOR_WORKSPACE_DIR: stateDir,
    ...env,
  }, nodeArgs);
  return {
    child: spawned.child,
    output: spawned.output,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      await spawned.stop(signal);
      removeTempDir(stateDir);
    },
  };
}
