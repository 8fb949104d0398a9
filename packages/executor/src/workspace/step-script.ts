/**
 * Step scripts: each docker step's `commands` become a file under
 * `<workspace>/.sourcegraph-executor/`, which the runtime runs with `/bin/sh`.
 */

/** The scripts directory, relative to the workspace root. */
export const SCRIPTS_DIR = '.sourcegraph-executor';

/** `<jobID>.<i>_<repo with / replaced by _>@<commit>.sh`, as Sourcegraph names them. */
export function stepScriptName(job: { id: number; repositoryName: string; commit: string }, index: number): string {
  return `${job.id}.${index}_${job.repositoryName.replaceAll('/', '_')}@${job.commit}.sh`;
}

/** The script path relative to the workspace root, as StepSpec.scriptPath wants it. */
export function stepScriptPath(job: { id: number; repositoryName: string; commit: string }, index: number): string {
  return `${SCRIPTS_DIR}/${stepScriptName(job, index)}`;
}

/**
 * Runs under plain sh first; if bash exists (on PATH or at /bin/bash) the script re-executes itself
 * with it, so step commands may use bash syntax. The argument marks the second run. Errors do not stop
 * the script (no `set -e`); its exit status is that of the last command, as in Sourcegraph.
 */
export const STEP_SCRIPT_PREAMBLE = `# Step script written by the Sandfleet executor.
if [ -z "$1" ]; then
  bash_path=$(command -p -v bash 2>/dev/null)
  if [ -n "$bash_path" ]; then
    exec "$bash_path" "$0" skip-check
  elif [ -f /bin/bash ]; then
    exec /bin/bash "$0" skip-check
  fi
fi

# Echo every command into the step's log.
set -x
`;

/** The script for one step: the preamble, then the commands one per line. */
export function buildStepScript(commands: readonly string[]): string {
  return `${STEP_SCRIPT_PREAMBLE}\n${commands.join('\n')}\n`;
}
