import fs from 'node:fs';
import path from 'node:path';
import { type Body, localSource, type TerraformModule } from './module.js';

/** Arguments of a module call that are Terraform's, not the child's variables. */
const MODULE_META_ARGUMENTS = new Set(['source', 'version', 'count', 'for_each', 'depends_on', 'providers']);

/** Every variable has a type and a description; every output a description. */
export function undocumented(mod: TerraformModule): string[] {
  const problems: string[] = [];
  for (const [name, body] of mod.variables) {
    if (!nonEmpty(body.description)) problems.push(`${mod.dir}: variable ${name} has no description`);
    if (body.type === undefined) problems.push(`${mod.dir}: variable ${name} has no type`);
  }
  for (const [name, body] of mod.outputs) {
    if (!nonEmpty(body.description)) problems.push(`${mod.dir}: output ${name} has no description`);
  }
  return problems;
}

/** A call passes only variables the child declares, and every one the child requires. */
export function badModuleArguments(mod: TerraformModule, call: string, child: TerraformModule): string[] {
  const args = mod.moduleCalls.get(call) ?? {};
  const passed = Object.keys(args).filter((a) => !MODULE_META_ARGUMENTS.has(a));
  const problems = passed
    .filter((a) => !child.variables.has(a))
    .map((a) => `${mod.dir}: module ${call} passes ${a}, which ${child.dir} does not declare`);
  for (const [name, body] of child.variables) {
    if (!('default' in body) && !passed.includes(name)) problems.push(`${mod.dir}: module ${call} does not pass ${name}, which ${child.dir} requires`);
  }
  return problems;
}

/**
 * A reusable module states the Terraform and provider versions it works with, names every
 * provider its resources use, and configures none (the caller does).
 */
export function badVersionConstraints(mod: TerraformModule): string[] {
  const problems: string[] = [];
  const terraform = mod.terraformBlocks[0];
  if (mod.terraformBlocks.length !== 1 || terraform === undefined || !nonEmpty(terraform.required_version)) {
    return [`${mod.dir}: needs one terraform block with required_version`];
  }
  const required = new Set(((terraform.required_providers ?? []) as Body[]).flatMap((p) => Object.keys(p)));
  for (const provider of usedProviders(mod)) {
    if (!required.has(provider)) problems.push(`${mod.dir}: uses provider ${provider} but required_providers does not name it`);
  }
  for (const provider of mod.providers) problems.push(`${mod.dir}: configures provider ${provider}; leave that to the caller`);
  return problems;
}

/** The providers a module's resources and data sources belong to (the type's prefix, or `provider =`). */
function usedProviders(mod: TerraformModule): Set<string> {
  const used = new Set<string>();
  for (const [key, body] of [...mod.resources, ...mod.data]) {
    const type = key.replace(/^data\./, '').split('.')[0]!;
    used.add(typeof body.provider === 'string' ? body.provider.replace(/^\$\{(.*)\}$/, '$1').split('.')[0]! : type.split('_')[0]!);
  }
  return used;
}

/** Each local module source names a directory that holds a module, inside `within`. */
export function badLocalSources(mod: TerraformModule, within: string): string[] {
  const problems: string[] = [];
  for (const [call, body] of mod.moduleCalls) {
    const source = localSource(body);
    if (source === undefined) {
      problems.push(`${mod.dir}: module ${call} has source ${JSON.stringify(body.source)}; use a relative path`);
      continue;
    }
    const target = path.resolve(mod.dir, source);
    if (!isInside(target, within)) problems.push(`${mod.dir}: module ${call} source ${source} leaves ${within}`);
    else if (!fs.existsSync(target) || !fs.readdirSync(target).some((f) => f.endsWith('.tf'))) problems.push(`${mod.dir}: module ${call} source ${source} holds no module`);
  }
  return problems;
}

export function isInside(target: string, dir: string): boolean {
  const relative = path.relative(dir, target);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

function nonEmpty(value: unknown): boolean {
  return typeof value === 'string' && value.trim() !== '';
}
