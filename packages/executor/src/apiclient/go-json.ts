import type { z } from 'zod';

/**
 * Go's encoding/json, which every Sourcegraph instance uses, matches object keys to struct fields
 * case-insensitively: `knownIDs` fills `KnownIDs` just as `knownIds` does. Answers from such peers
 * are read the same way here: before a response is validated, every key of an object whose shape
 * the schema knows is renamed to the schema's spelling when it matches one case-insensitively.
 * An exact match wins over a case-insensitive one (whatever their order in the body); keys that
 * match nothing are left alone. Values are normalized recursively through objects, arrays,
 * records and optional/nullable/default wrappers.
 */
export function normalizeKeys(value: unknown, schema: z.ZodType): unknown {
  const def = defOf(schema);
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'nonoptional':
    case 'readonly':
    case 'catch':
      return normalizeKeys(value, def.innerType as z.ZodType);
    case 'pipe':
      return normalizeKeys(value, def.in as z.ZodType);
    case 'lazy':
      return normalizeKeys(value, (def.getter as () => z.ZodType)());
    case 'array':
      return Array.isArray(value) ? value.map((item) => normalizeKeys(item, def.element as z.ZodType)) : value;
    case 'record':
      return isPlainObject(value) ? mapValues(value, (v) => normalizeKeys(v, def.valueType as z.ZodType)) : value;
    case 'object':
      return isPlainObject(value) ? normalizeObject(value, def.shape as Record<string, z.ZodType>) : value;
    default:
      return value;
  }
}

function normalizeObject(value: Record<string, unknown>, shape: Record<string, z.ZodType>): Record<string, unknown> {
  const byFoldedKey = new Map<string, string>();
  for (const key of Object.keys(shape)) byFoldedKey.set(key.toLowerCase(), key);
  const out: Record<string, unknown> = {};
  const exact = new Set<string>();
  for (const [key, v] of Object.entries(value)) {
    const target = Object.hasOwn(shape, key) ? key : byFoldedKey.get(key.toLowerCase());
    if (target === undefined) {
      if (!Object.hasOwn(out, key)) define(out, key, v);
      continue;
    }
    if (exact.has(target)) continue; // the exact spelling already filled this field
    if (target === key) exact.add(target);
    define(out, target, normalizeKeys(v, shape[target]!));
  }
  return out;
}

/** Sets an own property even for a key such as `__proto__`, which plain assignment would not. */
function define(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function defOf(schema: z.ZodType): Record<string, unknown> & { type: string } {
  return (schema as unknown as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mapValues(value: Record<string, unknown>, fn: (v: unknown) => unknown): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fn(v)]));
}
