// Reads and edits the top-level fields of a JSON object in place, on its bytes: filters read a few small
// fields of an event, enrichment replaces or inserts one or two, and everything else keeps its bytes.
// Parsing and re-serialising a whole 20 KB transaction costs several times the processing budget
// (bench/processing.mjs), and would also renormalise numbers and escapes nobody asked to change.
import { Buffer } from 'node:buffer';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/** Where one member's value lies in the object's bytes: [start, end). */
export interface FieldSpan {
  readonly start: number;
  readonly end: number;
}

export interface JsonObjectFields {
  readonly bytes: Buffer;
  /** Top-level members by key; a repeated key keeps its last value, as JSON.parse does. */
  readonly fields: ReadonlyMap<string, FieldSpan>;
  /** Offset just after the opening brace, where new members are inserted. */
  readonly insertAt: number;
}

/** A replacement of bytes [start, end) by `text` (an insertion when start === end). */
export interface Edit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

/**
 * The top-level members of the JSON object in `bytes`, or undefined when the bytes are not one JSON
 * object. Nested values are skipped by bracket depth only (strings respected), not validated: a
 * payload that was not JSON is left for Sentry to reject, never repaired.
 */
export function scanObject(bytes: Buffer): JsonObjectFields | undefined {
  const n = bytes.length;
  let i = skipSpace(bytes, 0);
  if (bytes[i] !== OPEN_BRACE) return undefined;
  const insertAt = i + 1;
  const fields = new Map<string, FieldSpan>();
  i = skipSpace(bytes, i + 1);
  if (bytes[i] === CLOSE_BRACE) return skipSpace(bytes, i + 1) === n ? { bytes, fields, insertAt } : undefined;
  for (;;) {
    if (bytes[i] !== QUOTE) return undefined;
    const keyEnd = skipString(bytes, i);
    if (keyEnd === -1) return undefined;
    const key = readKey(bytes, i, keyEnd);
    i = skipSpace(bytes, keyEnd);
    if (bytes[i] !== COLON) return undefined;
    const start = skipSpace(bytes, i + 1);
    const end = skipValue(bytes, start);
    if (end === -1 || end === start) return undefined;
    if (key !== undefined) fields.set(key, { start, end });
    i = skipSpace(bytes, end);
    const c = bytes[i];
    if (c === COMMA) i = skipSpace(bytes, i + 1);
    else if (c === CLOSE_BRACE) return skipSpace(bytes, i + 1) === n ? { bytes, fields, insertAt } : undefined;
    else return undefined;
  }
}

/** The parsed value of a top-level field, or undefined when it is absent or not JSON. */
export function readField(object: JsonObjectFields, key: string): unknown {
  const span = object.fields.get(key);
  if (!span) return undefined;
  try {
    return JSON.parse(object.bytes.toString('utf8', span.start, span.end));
  } catch {
    return undefined;
  }
}

/** A top-level field's value if it is a string. */
export function readStringField(object: JsonObjectFields, key: string): string | undefined {
  const span = object.fields.get(key);
  if (!span || object.bytes[span.start] !== QUOTE) return undefined;
  const value = readField(object, key);
  return typeof value === 'string' ? value : undefined;
}

/** Sets top-level fields: existing ones get their value's bytes replaced, new ones are inserted first. */
export function setFields(object: JsonObjectFields, values: ReadonlyMap<string, unknown>): Edit[] {
  const edits: Edit[] = [];
  const inserted: string[] = [];
  for (const [key, value] of values) {
    const span = object.fields.get(key);
    if (span) edits.push({ start: span.start, end: span.end, text: JSON.stringify(value) });
    else inserted.push(`${JSON.stringify(key)}:${JSON.stringify(value)}`);
  }
  if (inserted.length > 0) {
    const text = inserted.join(',') + (object.fields.size > 0 ? ',' : '');
    edits.push({ start: object.insertAt, end: object.insertAt, text });
  }
  return edits;
}

/** The bytes with the edits applied, as pieces (unchanged stretches are views, not copies); edits must not overlap. */
export function applyEdits(bytes: Buffer, edits: readonly Edit[]): Buffer[] {
  const sorted = [...edits].sort((a, b) => a.start - b.start);
  const pieces: Buffer[] = [];
  let at = 0;
  for (const edit of sorted) {
    pieces.push(bytes.subarray(at, edit.start), Buffer.from(edit.text, 'utf8'));
    at = edit.end;
  }
  pieces.push(bytes.subarray(at));
  return pieces;
}

function skipSpace(bytes: Buffer, i: number): number {
  const n = bytes.length;
  while (i < n) {
    const c = bytes[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

/** `i` is at an opening quote; returns the offset after the closing one, or -1. */
function skipString(bytes: Buffer, i: number): number {
  const n = bytes.length;
  for (i++; i < n; i++) {
    const c = bytes[i];
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) i++;
  }
  return -1;
}

/** The end of the value starting at `i`: a string, a balanced object/array, or a bare scalar. -1 if unterminated. */
function skipValue(bytes: Buffer, i: number): number {
  const n = bytes.length;
  const first = bytes[i];
  if (first === QUOTE) return skipString(bytes, i);
  if (first === OPEN_BRACE || first === OPEN_BRACKET) {
    // The hot loop of processing: one pass over nested bytes, strings skipped, depth counted.
    let depth = 0;
    for (; i < n; i++) {
      const c = bytes[i];
      if (c === QUOTE) {
        for (i++; i < n; i++) {
          const d = bytes[i];
          if (d === QUOTE) break;
          if (d === BACKSLASH) i++;
        }
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
      else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        if (--depth === 0) return i + 1;
      }
    }
    return -1;
  }
  for (; i < n; i++) {
    const c = bytes[i];
    if (c === COMMA || c === CLOSE_BRACE || c === CLOSE_BRACKET || c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) return i;
  }
  return n;
}

/** Member names are short ASCII in practice; anything escaped or non-ASCII goes through JSON.parse. */
function readKey(bytes: Buffer, start: number, end: number): string | undefined {
  let key = '';
  for (let i = start + 1; i < end - 1; i++) {
    const c = bytes[i] as number;
    if (c === BACKSLASH || c >= 0x80) {
      try {
        return JSON.parse(bytes.toString('utf8', start, end)) as string;
      } catch {
        return undefined;
      }
    }
    key += String.fromCharCode(c);
  }
  return key;
}
