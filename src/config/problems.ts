// Zod issues as the problems a person reads: the path, what is wrong in plain words, and a hint taken
// from the schema (did-you-mean, the option's description, or the hint a custom check carries).
import type * as z from 'zod/mini';
import { descriptionAt, invalidValueHint, unknownKeyHint } from './hints.js';

export interface ConfigProblem {
  /** Dotted path into the configuration, e.g. "projects.web.dsn"; "" for the whole document. */
  readonly path: string;
  readonly message: string;
  readonly hint?: string;
}

/** "limits.maxEnvelopeByte: unknown key "maxEnvelopeByte" — did you mean "maxEnvelopeBytes"?" */
export function formatProblem(problem: ConfigProblem): string {
  return `${problem.path || '(root)'}: ${problem.message}${problem.hint ? ` — ${problem.hint}` : ''}`;
}

/** One zod issue as the problems a person reads: what is wrong at which path, and a hint from the schema. */
export function toProblems(issue: z.core.$ZodIssue, raw: unknown): ConfigProblem[] {
  const path = issue.path.map(String);
  const at = path.join('.');
  const value = valueAt(raw, issue.path);
  const described = () => descriptionAt(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => problem([...path, key].join('.'), `unknown key "${key}"`, unknownKeyHint(key, issue.path)));
    case 'invalid_key':
      return [problem(at, issue.issues[0]?.message ?? issue.message)];
    case 'invalid_type':
      if (value === undefined) return [problem(at, 'is required', described())];
      return [problem(at, `must be ${article(issue.expected)}, not ${describeValue(value)}`, described())];
    case 'invalid_union':
      return [problem(at, `${describeValue(value)} is not allowed here`, described())];
    case 'invalid_value':
      return [
        problem(
          at,
          `must be ${issue.values.map((option) => JSON.stringify(option)).join(', ')}${value === undefined ? '' : `, not ${describeValue(value)}`}`,
          invalidValueHint(value, issue.values),
        ),
      ];
    case 'too_small':
      return [problem(at, issue.message.startsWith('Too small') ? `must be at least ${String(issue.minimum)}` : issue.message, described())];
    case 'too_big':
      return [problem(at, issue.message.startsWith('Too big') ? `must be at most ${String(issue.maximum)}` : issue.message, described())];
    case 'custom':
      return [problem(at, issue.message, typeof issue.params?.hint === 'string' ? issue.params.hint : undefined)];
    default:
      return [problem(at, issue.message)];
  }
}

function problem(path: string, message: string, hint?: string): ConfigProblem {
  return hint === undefined ? { path, message } : { path, message, hint };
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let current = raw;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

function article(expected: string): string {
  if (expected === 'object') return 'an object';
  if (expected === 'array') return 'a list';
  if (expected === 'boolean') return 'true or false';
  if (expected === 'int') return 'a whole number';
  return `a ${expected}`;
}
