// The in-place JSON field reader/editor: finds top-level members without being fooled by nested or
// quoted brackets, refuses what is not one JSON object, and edits without touching other bytes.
import { describe, expect, it } from 'vitest';
import { applyEdits, readField, readStringField, scanObject, setFields } from '../../src/processing/json-fields.js';

const scan = (text: string) => scanObject(Buffer.from(text));

describe('scanObject', () => {
  it('finds top-level members only, past nested objects and brackets inside strings', () => {
    const object = scan('{"a":{"level":"x","b":[1,{"c":"]}"}]},"level":"warning" , "s":"q\\"}{","n":-1.5e3,"t":true,"z":null}');
    expect([...(object?.fields.keys() ?? [])]).toEqual(['a', 'level', 's', 'n', 't', 'z']);
    expect(object && readStringField(object, 'level')).toBe('warning');
    expect(object && readField(object, 's')).toBe('q"}{');
    expect(object && readField(object, 'n')).toBe(-1500);
    expect(object && readField(object, 'a')).toEqual({ level: 'x', b: [1, { c: ']}' }] });
  });

  it('keeps the last of repeated keys, as JSON.parse does', () => {
    const object = scan('{"level":"info","level":"fatal"}');
    expect(object && readStringField(object, 'level')).toBe('fatal');
  });

  it('reads escaped and non-ASCII keys and values', () => {
    const object = scan('{"t\\u0061gs":{"k":"v"},"ünï":"cödé ✓"}');
    expect(object && readField(object, 'tags')).toEqual({ k: 'v' });
    expect(object && readStringField(object, 'ünï')).toBe('cödé ✓');
  });

  it.each([
    ['empty', ''],
    ['an array', '[{"a":1}]'],
    ['a string', '"x"'],
    ['unterminated string', '{"a":"x}'],
    ['unbalanced object', '{"a":{"b":1}'],
    ['missing colon', '{"a" 1}'],
    ['trailing garbage', '{"a":1} x'],
    ['missing value', '{"a":}'],
    ['two objects', '{"a":1}{"b":2}'],
  ])('refuses %s', (_name, text) => {
    expect(scan(text)).toBeUndefined();
  });

  it('accepts an empty object and surrounding whitespace', () => {
    expect(scan(' \r\n{ }\n')?.fields.size).toBe(0);
  });
});

describe('setFields + applyEdits', () => {
  it('replaces existing values and inserts new members first; other bytes stay as they were', () => {
    const text = '{"message":"a\\u00e9 1.0","tags":{"a":"b"},"n":1.0}';
    const object = scan(text);
    if (!object) throw new Error('fixture');
    const out = Buffer.concat(applyEdits(object.bytes, setFields(object, new Map<string, unknown>([['tags', { a: 'b', c: 'd' }], ['user', { ip_address: '192.0.2.1' }]]))));
    expect(out.toString()).toBe('{"user":{"ip_address":"192.0.2.1"},"message":"a\\u00e9 1.0","tags":{"a":"b","c":"d"},"n":1.0}');
  });

  it('inserts into an empty object without a stray comma', () => {
    const object = scan('{}');
    if (!object) throw new Error('fixture');
    const out = Buffer.concat(applyEdits(object.bytes, setFields(object, new Map<string, unknown>([['tags', { a: 'b' }], ['user', { id: 1 }]]))));
    expect(JSON.parse(out.toString())).toEqual({ tags: { a: 'b' }, user: { id: 1 } });
  });
});
