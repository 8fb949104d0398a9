import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { capture, makeTempDir, SYSTEM_PATH_ENV } from '@sandfleet/test-helpers';
import { HclParseError, loadModule, renderTemplate, templateCalls, UnsupportedTemplateError } from '../src/index.js';
import {
  DEPLOY_TERRAFORM,
  documentationProblems,
  interfaceProblems,
  loadTree,
  moduleCallProblems,
  referenceProblems,
  renderTemplates,
  sensitivityProblems,
  shellProblems,
  shellScripts,
  type Tree,
  versionProblems,
} from './terraform-tree.js';

// The modules cannot be planned here (no provider can be downloaded), so they are checked
// statically: HashiCorp's HCL parser reads every file, and the checks below hold what
// `terraform validate` and a careful reviewer would. Each check is also run on a copy with one
// mistake put in, to show that it can fail.

const CLOUDS = ['google', 'aws'];
const LAYOUT = ['', 'modules/executors', 'modules/docker-mirror', 'modules/networking', 'modules/credentials',
  'examples/single-executor', 'examples/private-single-executor', 'examples/multiple-executors'];

// terraform is not installable here; where a binary happens to be, it checks what it can offline.
const HAS_TERRAFORM = ['/usr/local/bin/terraform', '/usr/bin/terraform'].some((f) => fs.existsSync(f));
const TERRAFORM_ENV = { ...SYSTEM_PATH_ENV, TF_CLI_CONFIG_FILE: '/dev/null', TF_IN_AUTOMATION: '1' };

let tree: Tree;
before(async () => {
  tree = await loadTree(DEPLOY_TERRAFORM);
});

/** A copy of deploy/terraform with one file's text replaced once (the text must be there). */
async function treeWith(file: string, from: string, to: string): Promise<Tree> {
  const root = makeTempDir('sandfleet-terraform-', { untilFileEnds: true });
  fs.cpSync(DEPLOY_TERRAFORM, root, { recursive: true });
  const target = path.join(root, file);
  const text = fs.readFileSync(target, 'utf8');
  assert.ok(text.includes(from), `${file} holds ${JSON.stringify(from)}`);
  fs.writeFileSync(target, text.replace(from, to));
  return loadTree(root);
}

describe('Terraform modules', () => {
  it('have the layout of Sourcegraph\'s, per cloud', () => {
    for (const cloud of CLOUDS) {
      for (const dir of LAYOUT) assert.ok(tree.modules.has(path.join(cloud, dir)), `${cloud}/${dir} is a module`);
    }
  });

  it('parse with HashiCorp\'s parser, which reports where a file is broken', async () => {
    assert.ok(tree.modules.size >= 2 * LAYOUT.length);
    const dir = makeTempDir('sandfleet-hcl-', { untilFileEnds: true });
    fs.writeFileSync(path.join(dir, 'broken.tf'), 'variable "x" {\n  default =\n}\n');
    await assert.rejects(loadModule(dir), (err: Error) => err instanceof HclParseError && /broken\.tf:\d+,\d+/.test(err.message));
  });

  it('reference only what is declared', async () => {
    assert.deepEqual(await referenceProblems(tree), []);
  });

  it('report an undeclared variable, local, resource, data source and module output', async () => {
    const cases: [string, string, string, RegExp][] = [
      ['google/modules/executors/main.tf', 'zone               = var.zone', 'zone               = var.zonee', /var\.zonee: no such variable/],
      ['aws/modules/executors/main.tf', '= "${local.asg_name}-drain"', '= "${local.asg_nam}-drain"', /local\.asg_nam: no such local/],
      ['aws/modules/executors/main.tf', 'Resource = aws_autoscaling_group.autoscaler.arn', 'Resource = aws_autoscaling_group.scaler.arn', /aws_autoscaling_group\.scaler\.arn: no such resource/],
      ['aws/modules/executors/main.tf', 'data.aws_ami.executor.id', 'data.aws_ami.executors.id', /data\.aws_ami\.executors\.id: no such data source/],
      ['google/main.tf', 'module.docker-mirror.ip_address}:5000', 'module.docker-mirror.address}:5000', /module docker-mirror has no output address/],
      ['aws/modules/networking/main.tf', 'aws_subnet.public[0].id : aws_subnet.default.id', 'aws_subnet.public[count.index].id : aws_subnet.default.id', /count\.index: count\. outside a count/],
    ];
    for (const [file, from, to, expected] of cases) {
      const problems = await referenceProblems(await treeWith(file, from, to));
      assert.equal(problems.length, 1, `${file}: ${to}: ${problems.join('\n')}`);
      assert.match(problems[0]!, expected);
    }
  });

  it('know a dynamic block\'s iterator inside its content only', async () => {
    const inside = await treeWith('google/modules/executors/main.tf', 'network_tier = "PREMIUM"', 'network_tier = access_config.value');
    assert.deepEqual(await referenceProblems(inside), []);
    const outside = await treeWith('google/modules/executors/main.tf', 'machine_type = var.machine_type', 'machine_type = access_config.value');
    assert.match((await referenceProblems(outside)).join('\n'), /access_config\.value: no such resource/);
  });

  it('mark every output that shows a secret sensitive, as terraform plan demands', async () => {
    assert.deepEqual(await sensitivityProblems(tree), []);
  });

  it('report an output that shows a secret without being marked sensitive', async () => {
    const resource = await treeWith('aws/modules/credentials/outputs.tf', '  sensitive   = true\n', '');
    assert.match((await sensitivityProblems(resource)).join('\n'), /output metric_writer_secret_key shows aws_iam_access_key\.metric_writer\.secret, which is sensitive/);
    const throughModule = await treeWith('aws/examples/single-executor/main.tf', '  sensitive   = true\n', '');
    assert.match((await sensitivityProblems(throughModule)).join('\n'), /output metric_writer_secret_key shows module\.credentials\.metric_writer_secret_key/);
    const variable = await treeWith('shared/executor-install/outputs.tf', '  sensitive   = true\n', '');
    assert.match((await sensitivityProblems(variable)).join('\n'), /output script shows local\.script \(from local\.env_file \(from local\.env \(from var\.(docker_auth_config|frontend_password)\)\)\)/);
  });

  it('document every variable and output', () => {
    assert.deepEqual(documentationProblems(tree), []);
  });

  it('report a variable without a description', async () => {
    const broken = await treeWith('aws/modules/networking/variables.tf', '  description = "The availability zone of the subnets."\n', '');
    assert.deepEqual(documentationProblems(broken), [`${path.join(broken.root, 'aws/modules/networking')}: variable availability_zone has no description`]);
  });

  it('call modules by relative path with exactly the variables they declare and all they require', () => {
    assert.deepEqual(moduleCallProblems(tree), []);
  });

  it('report a call that passes an unknown variable, misses a required one, or leaves the repository', async () => {
    const unknown = await treeWith('google/main.tf', '  region                   = var.region\n', '  regions                  = var.region\n');
    const problems = moduleCallProblems(unknown);
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems.join('\n'), /module networking passes regions, which .* does not declare/);
    assert.match(problems.join('\n'), /module networking does not pass region, which .* requires/);

    const registry = await treeWith('aws/examples/single-executor/main.tf', 'source = "../.."', 'source = "sourcegraph/executors/aws"');
    assert.match(moduleCallProblems(registry).join('\n'), /module executors has source "sourcegraph\/executors\/aws"; use a relative path/);
    const outside = await treeWith('aws/examples/single-executor/main.tf', 'source = "../.."', 'source = "../../../google"');
    assert.match(moduleCallProblems(outside).join('\n'), /module executors source \.\.\/\.\.\/\.\.\/google leaves/);
  });

  it('examples call the root module (or its submodules) of their cloud', () => {
    for (const cloud of CLOUDS) {
      for (const example of ['single-executor', 'private-single-executor']) {
        const mod = tree.modules.get(path.join(cloud, 'examples', example))!;
        assert.equal(mod.moduleCalls.get('executors')?.source, '../..', `${cloud} ${example}`);
      }
      const multiple = tree.modules.get(path.join(cloud, 'examples/multiple-executors'))!;
      const sources = [...multiple.moduleCalls.values()].map((call) => call.source);
      assert.ok(sources.filter((s) => s === '../../modules/executors').length >= 2, `${cloud}: two executor groups`);
    }
  });

  it('state their Terraform and provider versions and configure no provider', () => {
    assert.deepEqual(versionProblems(tree), []);
  });

  it('report a module that configures a provider or uses one it does not require', async () => {
    const configured = await treeWith('google/modules/networking/main.tf', 'resource "random_id"', 'provider "google" {}\n\nresource "random_id"');
    assert.match(versionProblems(configured).join('\n'), /networking: configures provider google/);
    const unrequired = await treeWith('aws/modules/credentials/versions.tf', 'aws = {', 'awz = {');
    assert.match(versionProblems(unrequired).join('\n'), /credentials: uses provider aws but required_providers does not name it/);
  });

  it('keep Sourcegraph\'s variable names, defaults and outputs, and mark every addition', () => {
    assert.deepEqual(interfaceProblems(tree), []);
  });

  it('report a changed default, a missing variable and an unmarked extra one', async () => {
    const changed = await treeWith('google/variables.tf', 'default     = "45m"', 'default     = "30m"');
    assert.deepEqual(interfaceProblems(changed), ['google: variable executor_maximum_runtime_per_job defaults to 30m, not 45m']);
    const renamed = await treeWith('aws/variables.tf', 'variable "docker_mirror_static_ip"', 'variable "docker_mirror_ip"');
    assert.deepEqual(interfaceProblems(renamed).sort(), [
      'aws: variable docker_mirror_ip is neither Sourcegraph\'s nor described as a Sandfleet addition',
      'aws: variable docker_mirror_static_ip is missing',
    ]);
    const missingOutput = await treeWith('google/modules/credentials/outputs.tf', 'output "metric_writer_credentials_file"', 'output "credentials_file"');
    assert.match(interfaceProblems(missingOutput).join('\n'), /output metric_writer_credentials_file is missing/);
  });

  it('scale on the coordinator\'s queue-size metric with Sourcegraph\'s formula', () => {
    const google = tree.modules.get('google/modules/executors')!;
    const autoscaler = JSON.stringify(google.resources.get('google_compute_autoscaler.executor-autoscaler'));
    assert.match(autoscaler, /custom\.googleapis\.com\/executors\/queue\/size/);
    assert.match(autoscaler, /"single_instance_assignment":"\$\{var\.jobs_per_instance_scaling\}"/);
    assert.match(String(google.locals.get('metric_filter')), /resource\.type = "global" AND metric\.labels\.queueName = .* AND metric\.labels\.environment = /);

    const aws = tree.modules.get('aws/modules/executors')!;
    const alarm = JSON.stringify(aws.resources.get('aws_cloudwatch_metric_alarm.scaling'));
    assert.match(alarm, /"metric_name":"src_executors_queue_size","namespace":"sourcegraph-executor"/);
    assert.match(alarm, /"queueName":"\$\{module\.startup\.queue_label\}"/);
    assert.match(alarm, /CEIL\(queueSize \/ \$\{var\.jobs_per_instance_scaling\}\) - instanceCount/);
    const hook = JSON.stringify(aws.resources.get('aws_autoscaling_lifecycle_hook.drain'));
    assert.match(hook, /autoscaling:EC2_INSTANCE_TERMINATING/);
  });

  it('are formatted as terraform fmt writes them (where a terraform binary happens to be installed)', { skip: !HAS_TERRAFORM }, async () => {
    const result = await capture(['terraform', 'fmt', '-check', '-recursive', '-list=true', DEPLOY_TERRAFORM], { env: TERRAFORM_ENV });
    assert.equal(result.exitCode, 0, `not formatted:\n${result.stdout}${result.stderr}`);
  });
});

describe('startup scripts', () => {
  it('are templates whose variables are exactly those the modules pass', () => {
    const { scripts, problems } = renderTemplates(tree);
    assert.deepEqual(problems, []);
    const names = scripts.map((s) => s.name).sort();
    assert.deepEqual(names, [
      'aws/modules/executors/startup-script.sh.tpl',
      'google/modules/executors/startup-script.sh.tpl',
      'shared/registry-mirror/startup-script.sh.tpl',
      'shared/registry-mirror/startup-script.sh.tpl',
    ]);
    for (const script of scripts.filter((s) => s.name.includes('/executors/'))) {
      // The shared install steps are embedded: download, verify, install, prepare, start.
      assert.match(script.text, /sha256sum --check/);
      assert.match(script.text, /executor install "\$INSTALL_RUNTIME"\n/);
      // `install systemd` validates the settings, so it runs with the module's env file loaded.
      assert.match(script.text, /\. \/etc\/systemd\/system\/executor\.env\n\s*set \+a\n\s*executor install systemd/);
      assert.match(script.text, /systemctl enable --now executor/);
      // The shared secret lands in a file only root reads; a stop signals the executor alone.
      assert.match(script.text, /umask 077\n\s*printf '%s' "\$INSTALL_ENV_B64" \| base64 -d >\/etc\/systemd\/system\/executor\.env/);
      assert.match(script.text, /chmod 0600 \/etc\/systemd\/system\/executor\.env/);
      assert.match(script.text, /KillMode=mixed/);
    }
  });

  it('single-quote every value Terraform substitutes, so none can leave its quotes', () => {
    const templates = [...tree.modules.values()].flatMap(templateCalls).map((call) => call.template);
    for (const template of new Set(templates)) {
      const text = fs.readFileSync(template, 'utf8').replace(/^\$\{install_executor\}$/m, '');
      const unquoted = [...text.matchAll(/(.)\$\{(\w+)\}(.)/g)].filter((m) => m[1] !== "'" || m[3] !== "'");
      assert.deepEqual(unquoted.map((m) => m[0]), [], template);
    }
  });

  it('report a template variable the module does not pass, and unsupported syntax', async () => {
    const broken = await treeWith('aws/modules/executors/startup-script.sh.tpl', "readonly ASG_NAME='${asg_name}'", "readonly ASG_NAME='${asg_name}${region}'");
    assert.match(renderTemplates(broken).problems.join('\n'), /passes asg_name, .* which uses asg_name, drain_watch_b64, install_executor, lifecycle_hook_name, region/);
    assert.throws(() => renderTemplate('%{ if x }y%{ endif }', {}), UnsupportedTemplateError);
    assert.equal(renderTemplate('a=$${HOME} b=${b}', { b: 'B' }), 'a=${HOME} b=B');
  });

  it('pass bash -n and shellcheck once rendered', async () => {
    const dir = makeTempDir('sandfleet-scripts-', { untilFileEnds: true });
    const scripts = [...renderTemplates(tree).scripts, ...shellScripts(DEPLOY_TERRAFORM)];
    assert.ok(scripts.length >= 7, scripts.map((s) => s.name).join(', '));
    assert.deepEqual(await shellProblems(scripts, dir), []);
  });

  it('report a syntax error and a shellcheck warning', async () => {
    const dir = makeTempDir('sandfleet-scripts-', { untilFileEnds: true });
    const syntax = await treeWith('shared/executor-install/install-executor.sh.tpl', 'apt_install() {', 'apt_install() { if');
    const syntaxProblems = await shellProblems(renderTemplates(syntax).scripts, dir);
    assert.match(syntaxProblems.join('\n'), /google\/modules\/executors\/startup-script\.sh\.tpl: bash -n: /);
    const unquoted = await treeWith('google/modules/executors/shutdown-script.sh', 'touch /run/executor-draining', 'touch $1');
    assert.match((await shellProblems(shellScripts(unquoted.root), dir)).join('\n'), /shutdown-script\.sh: shellcheck: .*SC2086/);
  });


  it('carry hostile values into executor.env unchanged (evaluated by terraform, where installed)', { skip: !HAS_TERRAFORM }, async () => {
    // The shared install module has no provider, so terraform can evaluate it offline.
    const dir = makeTempDir('sandfleet-tf-eval-', { untilFileEnds: true });
    const password = 'a"b\\c$d`e\'f ${HOME} $(reboot) %{x} \\"';
    const authConfig = '{"auths": {\n  "r.example.com": {"auth": "dTpw"}\n}}';
    const inputs = {
      frontend_url: 'https://sandfleet.example.com', frontend_password: password, queue_name: '', queue_names: ['codeintel', 'batches'],
      maximum_runtime_per_job: '30m', maximum_num_jobs: 2, num_total_jobs: 10, max_active_time: '2h', job_num_cpus: '4',
      job_memory: '12GB', firecracker_disk_space: '20GB', use_firecracker: true, docker_registry_mirror_urls: ['https://mirror.gcr.io', ''],
      docker_registry_mirror_node_exporter_url: '', docker_auth_config: authConfig, private_ca_cert_path: '',
      executor_binary_url: 'https://releases.example.com/executor', executor_binary_sha256: 'a'.repeat(64), runtime: 'gvisor', drain_timeout_seconds: 600,
    };
    const variables = Object.keys(inputs).map((name) => `variable "${name}" {}`).join('\n');
    const args = Object.keys(inputs).map((name) => `  ${name} = var.${name}`).join('\n');
    fs.writeFileSync(path.join(dir, 'main.tf'), `${variables}\nmodule "install" {\n  source = "${path.join(DEPLOY_TERRAFORM, 'shared/executor-install')}"\n${args}\n}\noutput "script" {\n  value = nonsensitive(module.install.script)\n}\noutput "queue_label" {\n  value = module.install.queue_label\n}\n`);
    fs.writeFileSync(path.join(dir, 'terraform.tfvars.json'), JSON.stringify(inputs));
    for (const argv of [['terraform', 'init', '-input=false', '-no-color'], ['terraform', 'apply', '-auto-approve', '-input=false', '-no-color']]) {
      const result = await capture(argv, { cwd: dir, env: TERRAFORM_ENV });
      assert.equal(result.exitCode, 0, `${argv.join(' ')}:\n${result.stdout}${result.stderr}`);
    }
    const script = await capture(['terraform', 'output', '-raw', 'script'], { cwd: dir, env: TERRAFORM_ENV });
    const label = await capture(['terraform', 'output', '-raw', 'queue_label'], { cwd: dir, env: TERRAFORM_ENV });
    assert.equal(label.stdout, 'batches_codeintel');
    const envB64 = /^readonly INSTALL_ENV_B64='([A-Za-z0-9+/=]*)'$/m.exec(script.stdout)?.[1];
    assert.ok(envB64 !== undefined, script.stdout);
    const env = parseSystemdEnvironmentFile(Buffer.from(envB64, 'base64').toString('utf8'));
    assert.equal(env.EXECUTOR_FRONTEND_PASSWORD, password);
    assert.deepEqual(JSON.parse(env.EXECUTOR_DOCKER_AUTH_CONFIG!), JSON.parse(authConfig));
    assert.equal(env.EXECUTOR_QUEUE_NAMES, 'batches,codeintel');
    assert.equal(env.EXECUTOR_DOCKER_REGISTRY_MIRROR_URL, 'https://mirror.gcr.io');
    assert.equal(env.EXECUTOR_RUNTIME, 'gvisor');
    assert.ok(!('EXECUTOR_QUEUE_NAME' in env) && !('DOCKER_REGISTRY_NODE_EXPORTER_URL' in env), 'empty values are left out');
  });
});

/**
 * Reads `KEY="value"` lines as systemd's EnvironmentFile= does for double-quoted values: a
 * backslash escapes ", \\, ` and $, and is kept before anything else.
 */
function parseSystemdEnvironmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n').filter((l) => l !== '')) {
    const match = /^([A-Z_][A-Z0-9_]*)="((?:[^"\\]|\\.)*)"$/.exec(line);
    assert.ok(match, `not a double-quoted assignment: ${line}`);
    env[match[1]!] = match[2]!.replace(/\\(.)/g, (escape, c: string) => ('"\\`$'.includes(c) ? c : escape));
  }
  return env;
}
