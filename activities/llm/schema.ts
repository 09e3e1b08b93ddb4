/**
 * The JSON Schema sent with `response_format: json_schema` (https://console.groq.com/docs/structured-outputs).
 *
 * The zod schema is converted with zod 4's `z.toJSONSchema` (output side) and then fitted to what
 * strict mode accepts:
 * - every object gets `additionalProperties: false` and lists every property in `required`; a
 *   property that is optional in zod is therefore always written by the model (the zod schema
 *   still accepts it, and it is still validated after parsing);
 * - keywords outside the common strict subset (numeric bounds, string lengths, patterns,
 *   formats, array sizes, defaults) are removed and restated in the property's `description`,
 *   so the model still reads them and zod still enforces them;
 * - `oneOf` becomes `anyOf`; the `$schema` line goes.
 * A schema strict mode cannot express (a root that is not an object, objects with arbitrary keys,
 * `allOf`, types zod cannot write as JSON Schema) is refused: the call then uses `json_object`.
 */
import { z, type ZodType } from 'zod';

type Json = Record<string, unknown>;

/** Moved into the description, with how they read there. */
const RESTATED: Record<string, (v: unknown) => string | undefined> = {
  minimum: (v) => (typeof v === 'number' && v <= -Number.MAX_SAFE_INTEGER ? undefined : `at least ${String(v)}`),
  maximum: (v) => (typeof v === 'number' && v >= Number.MAX_SAFE_INTEGER ? undefined : `at most ${String(v)}`),
  exclusiveMinimum: (v) => `greater than ${String(v)}`,
  exclusiveMaximum: (v) => `less than ${String(v)}`,
  multipleOf: (v) => `a multiple of ${String(v)}`,
  minLength: (v) => (v === 1 ? 'not empty' : `at least ${String(v)} characters`),
  maxLength: (v) => `at most ${String(v)} characters`,
  pattern: (v) => `matching /${String(v)}/`,
  format: (v) => `format ${String(v)}`,
  minItems: (v) => `at least ${String(v)} items`,
  maxItems: (v) => `at most ${String(v)} items`,
  uniqueItems: (v) => (v === true ? 'items unique' : undefined),
  default: () => undefined,
  examples: () => undefined,
};

const KEPT = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'enum',
  'const',
  'anyOf',
  '$ref',
  '$defs',
  'definitions',
  'description',
  'title',
]);

class Unsupported extends Error {}

function fitNode(node: unknown, path: string): unknown {
  if (Array.isArray(node)) return node.map((n, i) => fitNode(n, `${path}[${i}]`));
  if (!node || typeof node !== 'object') return node;
  const src = node as Json;
  const out: Json = {};
  const notes: string[] = [];
  for (const [k, v] of Object.entries(src)) {
    if (k === '$schema') continue;
    if (k === 'oneOf') {
      out.anyOf = fitNode(v, `${path}.anyOf`);
      continue;
    }
    if (k in RESTATED) {
      const note = RESTATED[k]!(v);
      if (note) notes.push(note);
      continue;
    }
    if (!KEPT.has(k)) throw new Unsupported(`'${k}' at ${path || 'the root'}`);
    if (k === 'properties' || k === '$defs' || k === 'definitions') {
      out[k] = Object.fromEntries(Object.entries(v as Json).map(([p, s]) => [p, fitNode(s, `${path}.${p}`)]));
    } else if (k === 'items' || k === 'anyOf') {
      out[k] = fitNode(v, `${path}.${k}`);
    } else {
      out[k] = v;
    }
  }
  const isObject = out.type === 'object' || (Array.isArray(out.type) && out.type.includes('object'));
  if (isObject) {
    const props = (out.properties ?? {}) as Json;
    if (out.additionalProperties !== undefined && out.additionalProperties !== false) {
      throw new Unsupported(`an object with arbitrary keys at ${path || 'the root'}`);
    }
    out.properties = props;
    out.additionalProperties = false;
    out.required = Object.keys(props);
  }
  if (notes.length) out.description = [out.description, `(${notes.join(', ')})`].filter(Boolean).join(' ');
  return out;
}

/** The strict JSON Schema of `schema`, or why there is none. */
export function strictJsonSchema(schema: ZodType): { schema: Json } | { error: string } {
  let raw: unknown;
  try {
    raw = z.toJSONSchema(schema, { io: 'output' });
  } catch (e) {
    return { error: `zod cannot write it as JSON Schema (${e instanceof Error ? e.message : String(e)})` };
  }
  try {
    const fitted = fitNode(raw, '') as Json;
    if (fitted.type !== 'object') return { error: 'the root is not an object' };
    return { schema: fitted };
  } catch (e) {
    if (e instanceof Unsupported) return { error: `strict mode cannot express ${e.message}` };
    throw e;
  }
}

/** A `json_schema.name` Groq accepts: a-z, A-Z, 0-9, '_' and '-', at most 64 characters. */
export function schemaNameOf(name: string | undefined): string {
  const s = (name ?? '')
    .replace(/[^A-Za-z0-9_-]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 64);
  return s || 'reply';
}
