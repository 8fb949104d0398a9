import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { readAsset } from '../../../assets.js';

/**
 * Firecracker's own OpenAPI description of its API (the repository's copy, firecracker-api.yaml),
 * compiled into one validator per path and method. Swagger 2.0 definitions are JSON Schema
 * (draft 4 subset) apart from a few annotations (readOnly, int32/int64 formats), which ajv is told
 * to ignore.
 */

/** Beside this module in the sources; embedded as an asset in the standalone binary. */
export const API_SCHEMA_URL = new URL('./firecracker-api.yaml', import.meta.url);

export type HttpMethod = 'GET' | 'PUT' | 'PATCH';

interface SwaggerParameter {
  name: string;
  in: 'body' | 'path' | 'query';
  required?: boolean;
  type?: string;
  schema?: object;
}

interface SwaggerOperation {
  operationId: string;
  parameters?: SwaggerParameter[];
}

interface SwaggerDocument {
  info: { version: string };
  paths: Record<string, Record<string, SwaggerOperation>>;
  definitions: Record<string, object>;
}

export interface ApiOperation {
  method: HttpMethod;
  /** The path template, e.g. `/drives/{drive_id}`. */
  template: string;
  operationId: string;
  /** Values of the template's `{…}` parameters in the request path. */
  pathParams: Record<string, string>;
}

export interface ValidationOutcome {
  operation: ApiOperation | undefined;
  /** Empty when the request conforms; otherwise what is wrong, one entry per problem. */
  problems: string[];
}

interface CompiledOperation {
  operationId: string;
  body: { required: boolean; validate: ValidateFunction } | undefined;
}

interface CompiledPath {
  template: string;
  pattern: RegExp;
  names: string[];
  methods: Map<HttpMethod, CompiledOperation>;
}

const SCHEMA_ID = 'firecracker-api';

export class FirecrackerApiSchema {
  private constructor(readonly version: string, private readonly paths: CompiledPath[]) {}

  static load(source: URL = API_SCHEMA_URL): FirecrackerApiSchema {
    const doc = parse(readAsset(source)) as SwaggerDocument;
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
    ajv.addSchema({ $id: SCHEMA_ID, definitions: denyUnknownFields(doc.definitions) });
    const paths: CompiledPath[] = [];
    for (const [template, operations] of Object.entries(doc.paths)) {
      const names: string[] = [];
      const source = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{(\w+)\}/g, (_m, name: string) => {
        names.push(name);
        return '([^/]+)';
      });
      const methods = new Map<HttpMethod, CompiledOperation>();
      for (const [method, op] of Object.entries(operations)) {
        const body = op.parameters?.find((p) => p.in === 'body');
        methods.set(method.toUpperCase() as HttpMethod, {
          operationId: op.operationId,
          body: body?.schema ? { required: body.required === true, validate: ajv.compile(rebase(body.schema)) } : undefined,
        });
      }
      paths.push({ template, pattern: new RegExp(`^${source}$`), names, methods });
    }
    return new FirecrackerApiSchema(doc.info.version, paths);
  }

  /** The operation `method path` names, or why there is none. */
  match(method: string, requestPath: string): { operation?: ApiOperation; problem?: string } {
    for (const p of this.paths) {
      const m = p.pattern.exec(requestPath);
      if (!m) continue;
      const op = p.methods.get(method as HttpMethod);
      if (!op) return { problem: `Invalid request method and/or path: ${method} ${requestPath}` };
      const pathParams: Record<string, string> = {};
      p.names.forEach((name, i) => { pathParams[name] = decodeURIComponent(m[i + 1]!); });
      return { operation: { method: method as HttpMethod, template: p.template, operationId: op.operationId, pathParams } };
    }
    return { problem: `Invalid request method and/or path: ${method} ${requestPath}` };
  }

  /** Checks a request (body already parsed from JSON, or undefined when there is none) against the schema. */
  validate(method: string, requestPath: string, body: unknown): ValidationOutcome {
    const { operation, problem } = this.match(method, requestPath);
    if (!operation) return { operation: undefined, problems: [problem!] };
    const compiled = this.paths.find((p) => p.template === operation.template)!.methods.get(operation.method)!;
    if (!compiled.body) return { operation, problems: body === undefined ? [] : [`${method} ${operation.template} takes no body`] };
    if (body === undefined) return { operation, problems: compiled.body.required ? [`${method} ${operation.template} requires a body`] : [] };
    if (compiled.body.validate(body)) return { operation, problems: [] };
    const problems = (compiled.body.validate.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message ?? 'is invalid'}${e.params && 'allowedValues' in e.params ? ` (${(e.params.allowedValues as unknown[]).join(', ')})` : ''}`);
    return { operation, problems };
  }
}

/**
 * Firecracker's request types refuse fields they do not know (serde's deny_unknown_fields), which
 * the schema leaves implicit: an object with declared properties and no `additionalProperties`
 * gets `additionalProperties: false`, so a misspelt field fails here rather than at the VMM.
 */
export function denyUnknownFields<T>(schema: T): T {
  if (Array.isArray(schema)) return schema.map(denyUnknownFields) as T;
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) out[k] = k === 'properties' || k === 'definitions'
    ? Object.fromEntries(Object.entries(v as object).map(([name, sub]) => [name, denyUnknownFields(sub)]))
    : denyUnknownFields(v);
  if ('properties' in out && !('additionalProperties' in out)) out.additionalProperties = false;
  return out as T;
}

/** `#/definitions/X` refers to the document; compiled schemas live beside it, so point refs at it. */
function rebase(schema: object): object {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/definitions/', `"${SCHEMA_ID}#/definitions/`)) as object;
}

let shared: FirecrackerApiSchema | undefined;

/** The schema compiled once per process. */
export function apiSchema(): FirecrackerApiSchema {
  shared ??= FirecrackerApiSchema.load();
  return shared;
}
