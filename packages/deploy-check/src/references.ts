import { getReferencesInExpression } from './hcl2json.js';
import type { Body, TerraformModule } from './module.js';

/** What a reference may name besides the module's own declarations, where it stands. */
interface Scope {
  each: boolean;
  count: boolean;
  /** Iterators of the dynamic blocks around the expression. */
  iterators: string[];
}

interface Expression {
  file: string;
  where: string;
  text: string;
  scope: Scope;
}

/** Arguments whose traversals name providers or attributes, not objects. */
const NOT_EXPRESSIONS = new Set(['lifecycle', 'provider', 'providers']);

/** Names Terraform defines everywhere. */
const BUILT_IN_OBJECTS = new Set(['path', 'terraform']);

/**
 * Every reference in mod that names nothing: an undeclared var./local./data./module./resource,
 * an output a called module does not have, each./count. outside for_each/count, an iterator
 * outside its dynamic block. `children` are the called modules, by call name, when local.
 */
export async function unresolvedReferences(mod: TerraformModule, children: Map<string, TerraformModule>): Promise<string[]> {
  const problems: string[] = [];
  for (const expression of expressionsOf(mod)) {
    const references = await getReferencesInExpression(expression.file, nativeTemplate(expression.text));
    for (const { value } of references) {
      const problem = resolve(mod, children, expression.scope, value.split('.'));
      if (problem) problems.push(`${mod.dir}/${expression.file}: ${expression.where}: ${value}: ${problem}`);
    }
  }
  return problems;
}

/**
 * The parser renders a string attribute as its template text: quotes and backslashes outside
 * `${…}` unescaped. Escapes them again, so the text parses as the quoted HCL template it was.
 */
export function nativeTemplate(text: string): string {
  let out = '"';
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (depth > 0) {
      if (c === '{') depth++;
      else if (c === '}') depth--;
      out += c;
    } else if (text.startsWith('$${', i)) {
      out += '$${';
      i += 2;
    } else if (text.startsWith('${', i)) {
      depth = 1;
      out += '${';
      i += 1;
    } else {
      out += c === '"' ? '\\"' : c === '\\' ? '\\\\' : c === '\n' ? '\\n' : c;
    }
  }
  return out + '"';
}

/**
 * Outputs that must be marked sensitive and are not: Terraform refuses (at plan time) an output
 * whose value comes from a sensitive variable, a sensitive output of a called module, or a
 * secret attribute a provider marks sensitive.
 */
export async function unmarkedSensitiveOutputs(mod: TerraformModule, children: Map<string, TerraformModule>): Promise<string[]> {
  const problems: string[] = [];
  for (const [name, body] of mod.outputs) {
    if (body.sensitive === true) continue;
    const secret = await sensitiveReference(mod, children, stringsIn(body.value), new Set());
    if (secret) problems.push(`${mod.dir}: output ${name} shows ${secret}, which is sensitive: mark the output sensitive`);
  }
  return problems;
}

/** Provider attributes that are secrets, by resource type. */
const SENSITIVE_ATTRIBUTES: Record<string, string[]> = {
  google_service_account_key: ['private_key'],
  aws_iam_access_key: ['secret', 'ses_smtp_password_v4'],
};

/** The first reference in texts that is sensitive, following locals (as Terraform does). */
async function sensitiveReference(mod: TerraformModule, children: Map<string, TerraformModule>, texts: string[], seenLocals: Set<string>): Promise<string | undefined> {
  for (const text of texts) {
    for (const { value } of await getReferencesInExpression(mod.dir, nativeTemplate(text))) {
      const [head, name, attribute, ...rest] = value.split('.');
      if (name === undefined) continue;
      if (head === 'var' && mod.variables.get(name)?.sensitive === true) return value;
      if (head === 'module' && attribute !== undefined && children.get(name)?.outputs.get(attribute)?.sensitive === true) return value;
      if ([attribute, ...rest].some((part) => part !== undefined && (SENSITIVE_ATTRIBUTES[head!] ?? []).includes(part))) return value;
      if (head === 'local' && !seenLocals.has(name)) {
        seenLocals.add(name);
        const via = await sensitiveReference(mod, children, stringsIn(mod.locals.get(name)), seenLocals);
        if (via) return `${value} (from ${via})`;
      }
    }
  }
  return undefined;
}

function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return value.includes('${') ? [value] : [];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(stringsIn);
  return [];
}

function resolve(mod: TerraformModule, children: Map<string, TerraformModule>, scope: Scope, parts: string[]): string | undefined {
  const [head, name, attribute] = parts;
  if (head === undefined) return 'empty reference';
  if (BUILT_IN_OBJECTS.has(head)) return undefined;
  if (head === 'each') return scope.each ? undefined : 'each. outside a for_each';
  if (head === 'count') return scope.count ? undefined : 'count. outside a count';
  if (scope.iterators.includes(head)) return undefined;
  if (name === undefined) return 'names nothing declared';
  switch (head) {
    case 'var':
      return mod.variables.has(name) ? undefined : 'no such variable';
    case 'local':
      return mod.locals.has(name) ? undefined : 'no such local';
    case 'data':
      return attribute !== undefined && mod.data.has(`data.${name}.${attribute}`) ? undefined : 'no such data source';
    case 'module': {
      if (!mod.moduleCalls.has(name)) return 'no such module call';
      const child = children.get(name);
      if (attribute === undefined || child === undefined) return undefined;
      return child.outputs.has(attribute) ? undefined : `module ${name} has no output ${attribute}`;
    }
    default:
      return mod.resources.has(`${head}.${name}`) ? undefined : 'no such resource';
  }
}

/** Every interpolated string of every block, with the scope it is evaluated in. */
function expressionsOf(mod: TerraformModule): Expression[] {
  const found: Expression[] = [];
  for (const block of mod.blocks) {
    const kind = block.where.split(' ')[0];
    const topLevel: Scope = { each: false, count: false, iterators: [] };
    const scope: Scope = kind === 'resource' || kind === 'data' || kind === 'module'
      ? { each: 'for_each' in block.body, count: 'count' in block.body, iterators: [] }
      : topLevel;
    const add = (text: string, at: Scope): void => void found.push({ file: block.file, where: block.where, text, scope: at });
    walkBody(block.body, scope, add, kind === 'variable');
  }
  return found;
}

function walkBody(body: Body, scope: Scope, add: (text: string, scope: Scope) => void, isVariable: boolean): void {
  for (const [key, value] of Object.entries(body)) {
    // Type constraints, provider choices and lifecycle's attribute lists name no objects.
    if ((isVariable && key === 'type') || NOT_EXPRESSIONS.has(key)) continue;
    if (key === 'dynamic') walkDynamic(value as Record<string, Body[]>, scope, add);
    else walkValue(value, scope, add);
  }
}

function walkDynamic(dynamic: Record<string, Body[]>, scope: Scope, add: (text: string, scope: Scope) => void): void {
  for (const [label, bodies] of Object.entries(dynamic)) {
    for (const { content, iterator, ...rest } of bodies) {
      walkBody(rest, scope, add, false);
      const name = typeof iterator === 'string' ? iterator.replace(/^\$\{(.*)\}$/, '$1') : label;
      const inner: Scope = { ...scope, iterators: [...scope.iterators, name] };
      for (const contentBody of (content ?? []) as Body[]) walkBody(contentBody, inner, add, false);
    }
  }
}

function walkValue(value: unknown, scope: Scope, add: (text: string, scope: Scope) => void): void {
  if (typeof value === 'string') {
    if (value.includes('${')) add(value, scope);
  } else if (Array.isArray(value)) {
    for (const item of value) walkValue(item, scope, add);
  } else if (value !== null && typeof value === 'object') {
    walkBody(value as Body, scope, add, false);
  }
}
