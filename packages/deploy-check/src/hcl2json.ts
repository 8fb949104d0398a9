import { createRequire } from 'node:module';

/** What these checks use of @cdktn/hcl2json: HashiCorp's HCL parser, compiled to WebAssembly. */
interface Hcl2Json {
  /** The file as HCL's JSON form; rejects with file:line,col on a syntax error. */
  parse(filename: string, contents: string): Promise<Record<string, unknown>>;
  /** The traversals (`var.x`, `module.m.out`, …) in a quoted template expression. */
  getReferencesInExpression(filename: string, expression: string): Promise<{ value: string }[]>;
}

// Loaded untyped on purpose: the package's declarations pull in the DOM library
// (`/// <reference lib="dom" />`), which would change fetch's types for the whole program.
const require = createRequire(import.meta.url);
const hcl2json = require('@cdktn/hcl2json') as Hcl2Json;

export const parse = hcl2json.parse;
export const getReferencesInExpression = hcl2json.getReferencesInExpression;
