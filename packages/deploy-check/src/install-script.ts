import fs from 'node:fs';
import path from 'node:path';
import { renderTemplate } from './templates.js';

/**
 * The executor startup script as `shared/executor-install` and the Google executors module
 * render it, computed here from the module's inputs the way its locals compute them, so the
 * script can be run without Terraform.
 */

/** The inputs of `shared/executor-install` (its variables.tf). */
export interface ExecutorInstallInputs {
  frontend_url: string;
  frontend_password: string;
  queue_name: string;
  queue_names: string[] | null;
  maximum_runtime_per_job: string;
  maximum_num_jobs: number;
  num_total_jobs: number;
  max_active_time: string;
  job_num_cpus: string;
  job_memory: string;
  firecracker_disk_space: string;
  use_firecracker: boolean;
  docker_registry_mirror_urls: string[];
  docker_registry_mirror_node_exporter_url: string;
  docker_auth_config: string;
  /** Unlike the variable (a file's path), the PEM text itself; empty for none. */
  private_ca_cert: string;
  executor_binary_url: string;
  executor_binary_sha256: string;
  runtime: string;
  drain_timeout_seconds: number;
}

const PRIVATE_CA_CERT_FILE = '/etc/ssl/certs/private_ca_cert.pem';

/** local.env of the module: what executor.env sets, empty values included. */
export function executorEnv(inputs: ExecutorInstallInputs): Record<string, string> {
  return {
    EXECUTOR_QUEUE_NAME: inputs.queue_name,
    EXECUTOR_QUEUE_NAMES: [...(inputs.queue_names ?? [])].sort().join(','),
    EXECUTOR_MAXIMUM_RUNTIME_PER_JOB: inputs.maximum_runtime_per_job,
    EXECUTOR_MAXIMUM_NUM_JOBS: String(inputs.maximum_num_jobs),
    EXECUTOR_JOB_NUM_CPUS: inputs.job_num_cpus,
    EXECUTOR_JOB_MEMORY: inputs.job_memory,
    EXECUTOR_FIRECRACKER_DISK_SPACE: inputs.firecracker_disk_space,
    EXECUTOR_FRONTEND_URL: inputs.frontend_url,
    EXECUTOR_FRONTEND_PASSWORD: inputs.frontend_password,
    EXECUTOR_NUM_TOTAL_JOBS: String(inputs.num_total_jobs),
    EXECUTOR_MAX_ACTIVE_TIME: inputs.max_active_time,
    EXECUTOR_USE_FIRECRACKER: String(inputs.use_firecracker),
    EXECUTOR_RUNTIME: inputs.runtime,
    EXECUTOR_DOCKER_REGISTRY_MIRROR_URL: inputs.docker_registry_mirror_urls.filter((u) => u !== '').join(','),
    EXECUTOR_DOCKER_AUTH_CONFIG: inputs.docker_auth_config.replace(/[\r\n]/g, ''),
    DOCKER_REGISTRY_NODE_EXPORTER_URL: inputs.docker_registry_mirror_node_exporter_url,
    NODE_EXTRA_CA_CERTS: inputs.private_ca_cert !== '' ? PRIVATE_CA_CERT_FILE : '',
  };
}

/**
 * local.env_file: `NAME="value"` lines with \, ", $ and ` escaped, empty values left out, in
 * the order Terraform's `for` walks a map (lexical by key).
 */
export function executorEnvFile(env: Record<string, string>): string {
  const escape = (value: string) => value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\$/g, '\\$').replace(/`/g, '\\`');
  return Object.keys(env)
    .sort()
    .filter((name) => env[name] !== '')
    .map((name) => `${name}="${escape(env[name]!)}"\n`)
    .join('');
}

const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

/** local.script of `shared/executor-install` (the tree is deploy/terraform or a copy of it). */
export function renderInstallExecutor(terraformRoot: string, inputs: ExecutorInstallInputs): string {
  const dir = path.join(terraformRoot, 'shared/executor-install');
  return renderTemplate(fs.readFileSync(path.join(dir, 'install-executor.sh.tpl'), 'utf8'), {
    executor_binary_url_b64: base64(inputs.executor_binary_url),
    executor_binary_sha256: inputs.executor_binary_sha256,
    runtime: inputs.runtime,
    drain_timeout_seconds: String(inputs.drain_timeout_seconds),
    env_file_b64: base64(executorEnvFile(executorEnv(inputs))),
    private_ca_cert_b64: inputs.private_ca_cert !== '' ? base64(inputs.private_ca_cert) : '',
    recycle_script_b64: base64(fs.readFileSync(path.join(dir, 'executor-recycle.sh'), 'utf8')),
  });
}

/** The Google executors' startup script (stock Debian image), with the shared install embedded. */
export function renderGoogleStartupScript(terraformRoot: string, inputs: ExecutorInstallInputs, options: { useLocalSsd: boolean }): string {
  const template = fs.readFileSync(path.join(terraformRoot, 'google/modules/executors/startup-script.sh.tpl'), 'utf8');
  return renderTemplate(template, { use_local_ssd: String(options.useLocalSsd), install_executor: renderInstallExecutor(terraformRoot, inputs) });
}
