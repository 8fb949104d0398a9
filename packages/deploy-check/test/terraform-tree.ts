import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { capture, SYSTEM_PATH_ENV } from '@sandfleet/test-helpers';
import {
  badLocalSources,
  badModuleArguments,
  badVersionConstraints,
  loadModule,
  localSource,
  moduleDirs,
  renderTemplate,
  templateCalls,
  templateVariables,
  type TerraformModule,
  undocumented,
  unmarkedSensitiveOutputs,
  unresolvedReferences,
} from '../src/index.js';
import { ANY, type ModuleInterface, REFERENCE_INTERFACES, ROOT_ADDITIONS, SENSITIVE_ROOT_VARIABLES } from './reference-interface.js';

/** deploy/terraform in this checkout. */
export const DEPLOY_TERRAFORM = fileURLToPath(new URL('../../../deploy/terraform/', import.meta.url));

/** Every module below root, by its directory relative to root. */
export type Tree = { root: string; modules: Map<string, TerraformModule> };

export async function loadTree(root: string): Promise<Tree> {
  const modules = new Map<string, TerraformModule>();
  for (const dir of moduleDirs(root)) modules.set(path.relative(root, dir), await loadModule(dir));
  return { root, modules };
}

const isExample = (relative: string): boolean => relative.split(path.sep).includes('examples');

/** The modules a module calls by local path, by call name. */
function childrenOf(tree: Tree, mod: TerraformModule): Map<string, TerraformModule> {
  const children = new Map<string, TerraformModule>();
  for (const [call, body] of mod.moduleCalls) {
    const source = localSource(body);
    const child = source === undefined ? undefined : tree.modules.get(path.relative(tree.root, path.resolve(mod.dir, source)));
    if (child) children.set(call, child);
  }
  return children;
}

export async function referenceProblems(tree: Tree): Promise<string[]> {
  const problems: string[] = [];
  for (const mod of tree.modules.values()) problems.push(...(await unresolvedReferences(mod, childrenOf(tree, mod))));
  return problems;
}

export async function sensitivityProblems(tree: Tree): Promise<string[]> {
  const problems: string[] = [];
  for (const mod of tree.modules.values()) problems.push(...(await unmarkedSensitiveOutputs(mod, childrenOf(tree, mod))));
  return problems;
}

export function documentationProblems(tree: Tree): string[] {
  return [...tree.modules.values()].flatMap(undocumented);
}

/**
 * Module calls: local sources only, examples inside their cloud's directory (they stand for a
 * user's configuration calling the published module), argument sets the children accept.
 */
export function moduleCallProblems(tree: Tree): string[] {
  const problems: string[] = [];
  for (const [relative, mod] of tree.modules) {
    const within = isExample(relative) ? path.join(tree.root, relative.split(path.sep)[0]!) : tree.root;
    problems.push(...badLocalSources(mod, within));
    for (const [call, child] of childrenOf(tree, mod)) problems.push(...badModuleArguments(mod, call, child));
  }
  return problems;
}

export function versionProblems(tree: Tree): string[] {
  return [...tree.modules].filter(([relative]) => !isExample(relative)).flatMap(([, mod]) => badVersionConstraints(mod));
}

/** A default as the specification writes it (see reference-interface.ts). */
export function writtenDefault(body: Record<string, unknown>): string {
  if (!('default' in body)) return 'required';
  const value = body.default;
  if (value === null) return 'null';
  if (value === '') return '""';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

const ADDITION = /^Sandfleet addition: /;

/**
 * Each module's inputs and outputs against Sourcegraph's: every one of theirs, with their
 * default; anything more described as a Sandfleet addition (the root modules' additions are
 * pinned in ROOT_ADDITIONS).
 */
export function interfaceProblems(tree: Tree): string[] {
  const problems: string[] = [];
  for (const [relative, expected] of Object.entries(REFERENCE_INTERFACES)) {
    const mod = tree.modules.get(relative);
    if (!mod) {
      problems.push(`${relative}: missing`);
      continue;
    }
    problems.push(...variableProblems(relative, mod, expected));
    for (const name of expected.outputs) if (!mod.outputs.has(name)) problems.push(`${relative}: output ${name} is missing`);
    for (const [name, body] of mod.outputs) {
      if (!expected.outputs.includes(name) && !ADDITION.test(String(body.description))) problems.push(`${relative}: output ${name} is neither Sourcegraph's nor described as a Sandfleet addition`);
    }
  }
  return problems;
}

function variableProblems(relative: string, mod: TerraformModule, expected: ModuleInterface): string[] {
  const problems: string[] = [];
  const isRoot = !relative.includes(path.sep);
  const wanted = isRoot ? { ...expected.variables, ...ROOT_ADDITIONS } : expected.variables;
  for (const [name, written] of Object.entries(wanted)) {
    const body = mod.variables.get(name);
    if (!body) problems.push(`${relative}: variable ${name} is missing`);
    else if (written !== ANY && writtenDefault(body) !== written) problems.push(`${relative}: variable ${name} defaults to ${writtenDefault(body)}, not ${written}`);
  }
  for (const [name, body] of mod.variables) {
    if (name in expected.variables) continue;
    if (!ADDITION.test(String(body.description))) problems.push(`${relative}: variable ${name} is neither Sourcegraph's nor described as a Sandfleet addition`);
    else if (isRoot && !(name in ROOT_ADDITIONS)) problems.push(`${relative}: variable ${name} is a root addition missing from ROOT_ADDITIONS`);
  }
  if (isRoot) {
    for (const name of SENSITIVE_ROOT_VARIABLES) if (mod.variables.get(name)?.sensitive !== true) problems.push(`${relative}: variable ${name} must be sensitive`);
  }
  return problems;
}

/** A rendered startup script, named for where it came from. */
export interface RenderedScript {
  name: string;
  text: string;
}

/** Stands in for every template value: what Terraform passes is base64 or a validated word. */
const SAMPLE_VALUE = 'c2FtcGxlLXZhbHVl';

/**
 * Every templatefile call's template, rendered with sample values. A value whose key names a
 * script fragment (`install_executor`) is that fragment rendered the same way, so the check
 * sees the script a machine runs. Problems: missing templates, map keys that differ from the
 * names the template uses.
 */
export function renderTemplates(tree: Tree): { scripts: RenderedScript[]; problems: string[] } {
  const scripts: RenderedScript[] = [];
  const problems: string[] = [];
  const fragments = new Map<string, string>([['install_executor', path.join(tree.root, 'shared/executor-install/install-executor.sh.tpl')]]);
  const render = (template: string, keys: string[], where: string): string | undefined => {
    if (!fs.existsSync(template)) {
      problems.push(`${where}: template ${template} does not exist`);
      return undefined;
    }
    const text = fs.readFileSync(template, 'utf8');
    const used = [...templateVariables(text)].sort();
    const passed = [...keys].sort();
    if (JSON.stringify(used) !== JSON.stringify(passed)) problems.push(`${where}: passes ${passed.join(', ')} to ${template}, which uses ${used.join(', ')}`);
    const values: Record<string, string> = {};
    for (const key of used) values[key] = fragments.has(key) ? fragmentText(key) : SAMPLE_VALUE;
    return renderTemplate(text, values);
  };
  const fragmentText = (key: string): string => {
    const template = fragments.get(key)!;
    const call = [...tree.modules.values()].flatMap(templateCalls).find((c) => c.template === template);
    return call ? (render(template, call.keys, call.where) ?? '') : '';
  };
  for (const mod of tree.modules.values()) {
    for (const call of templateCalls(mod)) {
      if ([...fragments.values()].includes(call.template)) continue;
      const text = render(call.template, call.keys, call.where);
      if (text !== undefined) scripts.push({ name: path.relative(tree.root, call.template), text });
    }
  }
  return { scripts, problems };
}

/** Every plain shell script below root (embedded into startup scripts with file()), hidden directories aside. */
export function shellScripts(root: string): RenderedScript[] {
  const found: RenderedScript[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, e.name);
      if (e.isDirectory() && !e.name.startsWith('.')) walk(file);
      else if (e.name.endsWith('.sh')) found.push({ name: path.relative(root, file), text: fs.readFileSync(file, 'utf8') });
    }
  };
  walk(root);
  return found;
}

/** `bash -n` and shellcheck on each script, written to dir first. */
export async function shellProblems(scripts: RenderedScript[], dir: string): Promise<string[]> {
  const problems: string[] = [];
  for (const [i, script] of scripts.entries()) {
    const file = path.join(dir, `${i}-${path.basename(script.name).replace(/\.tpl$/, '')}`);
    fs.writeFileSync(file, script.text);
    const syntax = await capture(['bash', '-n', file]);
    if (syntax.exitCode !== 0) problems.push(`${script.name}: bash -n: ${syntax.stderr.trim()}`);
    const lint = await capture(['shellcheck', '--shell=bash', '--severity=style', '--format=gcc', file], { env: SYSTEM_PATH_ENV });
    if (lint.exitCode !== 0) problems.push(`${script.name}: shellcheck: ${(lint.stdout + lint.stderr).trim()}`);
  }
  return problems;
}
