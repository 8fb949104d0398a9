import fs from 'node:fs';
import path from 'node:path';
import { parse } from './hcl2json.js';

/** A block's body as HashiCorp's HCL parser renders it: attributes, and nested blocks as arrays. */
export type Body = Record<string, unknown>;

/** One Terraform module (a directory of .tf files), parsed and indexed by what it declares. */
export interface TerraformModule {
  dir: string;
  /** The .tf files, relative to dir. */
  files: string[];
  variables: Map<string, Body>;
  outputs: Map<string, Body>;
  /** Each local's expression, by name. */
  locals: Map<string, unknown>;
  /** Resources and data sources by `type.name` (data sources: `data.type.name`). */
  resources: Map<string, Body>;
  data: Map<string, Body>;
  moduleCalls: Map<string, Body>;
  /** The labels of provider blocks (a reusable module should have none). */
  providers: string[];
  terraformBlocks: Body[];
  /** Each top-level block with the file it came from, for reference checks. */
  blocks: DeclaredBlock[];
}

export interface DeclaredBlock {
  file: string;
  /** e.g. `resource aws_instance.default`, `locals`, `output ip_address`. */
  where: string;
  body: Body;
}

/** A .tf file HashiCorp's parser refused; the message carries file:line,col. */
export class HclParseError extends Error {
  override readonly name = 'HclParseError';
}

/** A name declared twice in one module (Terraform refuses that too). */
export class DuplicateDeclarationError extends Error {
  override readonly name = 'DuplicateDeclarationError';
}

/** Parses every .tf file of dir (not its subdirectories) with HashiCorp's HCL parser. */
export async function loadModule(dir: string): Promise<TerraformModule> {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.tf')).sort();
  const mod: TerraformModule = {
    dir, files, variables: new Map(), outputs: new Map(), locals: new Map(), resources: new Map(),
    data: new Map(), moduleCalls: new Map(), providers: [], terraformBlocks: [], blocks: [],
  };
  for (const file of files) indexFile(mod, file, await parseFile(path.join(dir, file)));
  return mod;
}

async function parseFile(file: string): Promise<Body> {
  try {
    return await parse(path.basename(file), fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new HclParseError(`${file}: ${(err as Error).message}`, { cause: err });
  }
}

function indexFile(mod: TerraformModule, file: string, doc: Body): void {
  for (const [name, body] of labelled(doc.variable)) declare(mod, mod.variables, name, body, file, `variable ${name}`);
  for (const [name, body] of labelled(doc.output)) declare(mod, mod.outputs, name, body, file, `output ${name}`);
  for (const [name, body] of labelled(doc.module)) declare(mod, mod.moduleCalls, name, body, file, `module ${name}`);
  for (const [type, named] of Object.entries((doc.resource ?? {}) as Record<string, unknown>)) {
    for (const [name, body] of labelled(named)) declare(mod, mod.resources, `${type}.${name}`, body, file, `resource ${type}.${name}`);
  }
  for (const [type, named] of Object.entries((doc.data ?? {}) as Record<string, unknown>)) {
    for (const [name, body] of labelled(named)) declare(mod, mod.data, `data.${type}.${name}`, body, file, `data ${type}.${name}`);
  }
  for (const locals of (doc.locals ?? []) as Body[]) {
    for (const [name, value] of Object.entries(locals)) {
      if (mod.locals.has(name)) throw new DuplicateDeclarationError(`${mod.dir}/${file}: local ${name} is declared twice`);
      mod.locals.set(name, value);
    }
    mod.blocks.push({ file, where: 'locals', body: locals });
  }
  mod.providers.push(...Object.keys((doc.provider ?? {}) as Body));
  mod.terraformBlocks.push(...((doc.terraform ?? []) as Body[]));
}

/** `{ name: [body] }`, the parser's shape for blocks with one label, as pairs. */
function labelled(section: unknown): [string, Body][] {
  if (section === undefined) return [];
  return Object.entries(section as Record<string, Body[]>).flatMap(([name, bodies]) => bodies.map((body) => [name, body] as [string, Body]));
}

function declare(mod: TerraformModule, into: Map<string, Body>, name: string, body: Body, file: string, where: string): void {
  if (into.has(name)) throw new DuplicateDeclarationError(`${mod.dir}/${file}: ${where} is declared twice`);
  into.set(name, body);
  mod.blocks.push({ file, where, body });
}

/** A module call's source when it is a local path (the only kind these checks follow). */
export function localSource(call: Body): string | undefined {
  const source = call.source;
  return typeof source === 'string' && (source.startsWith('./') || source.startsWith('../')) ? source : undefined;
}

/**
 * Every directory below root (root included) that holds a .tf file. Hidden directories are
 * skipped: `terraform init` copies modules into `.terraform/`.
 */
export function moduleDirs(root: string): string[] {
  const dirs: string[] = [];
  const walk = (dir: string): void => {
    const entries = fs.readdirSync(dir, { withFileTypes: true });
    if (entries.some((e) => e.isFile() && e.name.endsWith('.tf'))) dirs.push(dir);
    for (const e of entries) if (e.isDirectory() && !e.name.startsWith('.')) walk(path.join(dir, e.name));
  };
  walk(root);
  return dirs.sort();
}
