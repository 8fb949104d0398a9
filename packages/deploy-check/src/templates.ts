import path from 'node:path';
import type { Body, TerraformModule } from './module.js';

/** One `templatefile("${path.module}/…", { … })` call of a module. */
export interface TemplateCall {
  /** The template's absolute path. */
  template: string;
  /** The keys of the variables map it passes. */
  keys: string[];
  where: string;
}

/** A template uses syntax the renderer here does not evaluate (so it could not be checked). */
export class UnsupportedTemplateError extends Error {
  override readonly name = 'UnsupportedTemplateError';
}

const CALL = /templatefile\("\$\{path\.module\}\/([^"]+)",\s*\{/g;
// `$${` and `%%{` are Terraform's escapes for a literal `${` and `%{`.
const TOKEN = /\$\$\{|%%\{|\$\{([^}]*)\}|%\{/g;
const IDENTIFIER = /^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*$/;

/** Every templatefile call in mod's blocks, with the keys of the map it passes. */
export function templateCalls(mod: TerraformModule): TemplateCall[] {
  const calls: TemplateCall[] = [];
  for (const block of mod.blocks) {
    for (const text of stringsOf(block.body)) {
      for (const match of text.matchAll(CALL)) {
        const mapStart = match.index + match[0].length;
        calls.push({ template: path.resolve(mod.dir, match[1]!), keys: topLevelKeys(text, mapStart), where: `${mod.dir}/${block.file}: ${block.where}` });
      }
    }
  }
  return calls;
}

/** The names a template interpolates. Directives (%{ … }) and expressions other than a bare name are refused. */
export function templateVariables(text: string): Set<string> {
  const names = new Set<string>();
  for (const match of text.matchAll(TOKEN)) {
    if (match[0] === '$${' || match[0] === '%%{') continue;
    const name = match[1] === undefined ? undefined : IDENTIFIER.exec(match[1])?.[1];
    if (name === undefined) throw new UnsupportedTemplateError(`unsupported template syntax ${JSON.stringify(match[0])}: use \${name} only`);
    names.add(name);
  }
  return names;
}

/** Renders a template as templatefile does for templates of bare `${name}`s. */
export function renderTemplate(text: string, values: Record<string, string>): string {
  templateVariables(text);
  return text.replace(TOKEN, (token: string, expression: string | undefined) => {
    if (token === '$${') return '${';
    if (token === '%%{') return '%{';
    const name = IDENTIFIER.exec(expression ?? '')![1]!;
    const value = values[name];
    if (value === undefined) throw new UnsupportedTemplateError(`no value for \${${name}}`);
    return value;
  });
}

/** The keys written `key =` at the top level of the object expression that starts at text[start]. */
function topLevelKeys(text: string, start: number): string[] {
  const keys: string[] = [];
  let depth = 0;
  let entryStart = true;
  for (let i = start; i < text.length; i++) {
    const c = text[i]!;
    if (depth === 0 && c === '}') break;
    if (depth === 0 && entryStart && !/\s/.test(c)) {
      const key = /^([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)/.exec(text.slice(i));
      if (key) keys.push(key[1]!);
      entryStart = false;
    }
    if ('{(['.includes(c)) depth++;
    else if ('})]'.includes(c)) depth--;
    if (depth === 0 && (c === '\n' || c === ',')) entryStart = true;
  }
  return keys;
}

function stringsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsOf);
  if (value !== null && typeof value === 'object') return Object.values(value as Body).flatMap(stringsOf);
  return [];
}
