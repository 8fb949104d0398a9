/**
 * The end-to-end tests' defaults over the shared helpers: a `sandfleet serve` process and
 * `executor run` processes on the shell runtime, polling fast, with the test coordinators' token.
 */
import {
  ACCESS_TOKEN,
  REPO_ROOT,
  startCoordinatorProcess,
  waitForJobState,
  type CoordinatorProcess,
} from '@sandfleet/test-helpers/coordinator';
import { createGitRepository, executorClient as clientWithToken, startExecutorProcess, waitFor, type ExecutorProcess } from '@sandfleet/test-helpers';

export { ACCESS_TOKEN, REPO_ROOT, createGitRepository, waitFor, waitForJobState, type CoordinatorProcess, type ExecutorProcess };

export const startCoordinator = startCoordinatorProcess;

export function startExecutor(coordinatorUrl: string, env: Record<string, string> = {}): ExecutorProcess {
  return startExecutorProcess(coordinatorUrl, ACCESS_TOKEN, { EXECUTOR_RUNTIME: 'shell', EXECUTOR_QUEUE_POLL_INTERVAL: '200ms', ...env });
}

/** An executor played by hand, authenticated with the test coordinators' token. */
export function executorClient(url: string, executorName: string) {
  return clientWithToken(url, executorName, ACCESS_TOKEN);
}
