// Hints for configuration problems, read off the schema itself: the keys and values allowed at a path
// ("did you mean …?"), and the option's own description when the message alone does not say enough.
import * as z from 'zod/mini';
import { configSchema } from './schema.js';

type Schema = z.core.$ZodType;
type Def = { type: string; [key: string]: unknown };

/** Wrappers whose inner schema describes the same value. */
const WRAPPERS = new Set(['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch', 'nonoptional', 'lazy']);

function defOf(schema: Schema): Def {
  return schema._zod.def as unknown as Def;
}

function unwrapOnce(schema: Schema): Schema | undefined {
  const def = defOf(schema);
  if (def.type === 'pipe') return def.in as Schema;
  if (def.type === 'lazy') return (def.getter as () => Schema)();
  if (WRAPPERS.has(def.type)) return def.innerType as Schema;
  return undefined;
}

/** The schema and its wrappers, outermost first. */
function layers(schema: Schema): Schema[] {
  const all = [schema];
  for (let inner = unwrapOnce(schema); inner && all.length < 20; inner = unwrapOnce(inner)) all.push(inner);
  return all;
}

function core(schema: Schema): Schema {
  return layers(schema).at(-1) as Schema;
}

/** Every schema a value at `path` may be checked against (several for unions). */
export function schemasAt(path: readonly PropertyKey[], root: Schema = configSchema): Schema[] {
  let current: Schema[] = [root];
  for (const segment of path) {
    const next: Schema[] = [];
    for (const schema of current.flatMap(alternatives)) {
      const def = defOf(schema);
      if (def.type === 'object') {
        const child = (def.shape as Record<string, Schema>)[String(segment)];
        if (child) next.push(child);
      } else if (def.type === 'record') next.push(def.valueType as Schema);
      else if (def.type === 'array') next.push(def.element as Schema);
    }
    current = next;
  }
  return current;
}

function alternatives(schema: Schema): Schema[] {
  const inner = core(schema);
  const def = defOf(inner);
  return def.type === 'union' ? (def.options as Schema[]).flatMap(alternatives) : [inner];
}

/** Keys an object at `path` accepts. */
export function keysAt(path: readonly PropertyKey[]): string[] {
  const keys = new Set<string>();
  for (const schema of schemasAt(path).flatMap(alternatives)) {
    const def = defOf(schema);
    if (def.type === 'object') for (const key of Object.keys(def.shape as object)) keys.add(key);
  }
  return [...keys];
}

/** The description of the option at `path` (`described()` in schema.ts), from its outermost wrapper inwards. */
export function descriptionAt(path: readonly PropertyKey[]): string | undefined {
  for (const schema of schemasAt(path)) {
    for (const layer of layers(schema)) {
      const description = z.globalRegistry.get(layer)?.description;
      if (description) return description;
    }
  }
  return undefined;
}

/** The closest candidate to a mistyped word, if any is close enough to be what was meant. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const other = candidate.toLowerCase();
    // A shortened or lengthened word ("warning" for "warn", "origin" for "origins") is as good as a typo.
    const affix = Math.min(lower.length, other.length) >= 3 && (lower.startsWith(other) || other.startsWith(lower));
    const distance = affix ? Math.abs(lower.length - other.length) / 10 : editDistance(lower, other);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // A third of the word may be wrong (at least 1, at most 3 edits): "maxEnvelopeByte", "trustproxy", "orgins".
  const allowed = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  return bestDistance <= allowed ? best : undefined;
}

/** Where else in the configuration an unknown key is a known option, e.g. "port" → "server.port". */
function elsewhere(key: string, path: readonly PropertyKey[]): string | undefined {
  for (const section of keysAt([])) {
    if (path.length === 1 && path[0] === section) continue;
    if (keysAt([section]).includes(key)) return `${section}.${key}`;
  }
  return undefined;
}

/** The hint for an unknown key at `path` (the object that holds it). */
export function unknownKeyHint(key: string, path: readonly PropertyKey[]): string | undefined {
  const known = keysAt(path);
  const guess = closest(key, known);
  if (guess) return `did you mean "${guess}"?`;
  if (path.length === 0 && key === 'dsn') return 'DSNs go under "projects": { "<name>": { "dsn": "…" } }';
  const moved = elsewhere(key, path);
  if (moved) return `"${key}" belongs under "${moved.split('.')[0]}": did you mean "${moved}"?`;
  return known.length > 0 ? `known keys here: ${known.filter((name) => name !== '$schema').join(', ')}` : undefined;
}

/** The hint for a value that is not one of the allowed options. */
export function invalidValueHint(input: unknown, values: readonly unknown[]): string | undefined {
  const strings = values.filter((value): value is string => typeof value === 'string');
  const guess = typeof input === 'string' ? closest(input, strings) : undefined;
  return guess === undefined ? undefined : `did you mean "${guess}"?`;
}

/** Edits (insert, delete, substitute, swap two neighbours) that turn a into b. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number) => (d[i] as number[])[j] as number;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}
