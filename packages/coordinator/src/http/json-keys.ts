import type { z } from 'zod';

type Def = { type: string; shape?: Record<string, z.ZodType>; element?: z.ZodType; innerType?: z.ZodType; in?: z.ZodType };

const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** The object schema inside wrappers (optional, nullable, default, pipe), if any. */
function unwrap(schema: z.ZodType): z.ZodType {
  for (let def = defOf(schema); ; def = defOf(schema)) {
    const inner = def.innerType ?? (def.type === 'pipe' ? def.in : undefined);
    if (!inner) return schema;
    schema = inner;
  }
}

/**
 * Renames the keys of `value` to the spelling `schema` uses when they differ only in case, as Go's
 * JSON decoder matches them (Sourcegraph executors and their clients are Go programs): `JobID`
 * reads as `jobId`. A key spelled exactly wins over its case variants. Recurses into nested
 * objects and arrays the schema describes; returns a new value, leaves `value` alone.
 */
export function matchKeysCaseInsensitively(schema: z.ZodType, value: unknown): unknown {
  const def = defOf(unwrap(schema));
  if (def.type === 'array' && def.element && Array.isArray(value)) return value.map((item) => matchKeysCaseInsensitively(def.element!, item));
  if (def.type !== 'object' || !def.shape || value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const shape = def.shape;
  const byLowerCase = new Map(Object.keys(shape).map((key) => [key.toLowerCase(), key]));
  const input = value as Record<string, unknown>;
  const result: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(input)) {
    const target = key in shape ? key : (byLowerCase.get(key.toLowerCase()) ?? key);
    // An exact spelling present in the input is never overwritten by a variant.
    if (target !== key && target in input) continue;
    if (target !== key && target in result) continue;
    result[target] = target in shape ? matchKeysCaseInsensitively(shape[target]!, item) : item;
  }
  return result;
}
