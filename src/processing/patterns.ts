// Match patterns for filter rules: a plain string matches as a substring, "/…/flags" is a regular
// expression. Parsed once at start-up, so a bad expression is a config problem, never a request error.

export type Matcher = (value: string) => boolean;

const REGEX_LITERAL = /^\/(.+)\/([a-z]*)$/s;

/** Flags that make RegExp#test stateful (g, y) would let one request's match change the next's. */
const ALLOWED_FLAGS = /^[imsuv]*$/;

/** Why `pattern` cannot be used, or undefined when it can. */
export function patternProblem(pattern: string): string | undefined {
  const literal = REGEX_LITERAL.exec(pattern);
  if (!literal) return pattern === '' ? 'an empty pattern would match everything' : undefined;
  const [, source = '', flags = ''] = literal;
  if (!ALLOWED_FLAGS.test(flags)) return `regular expression flags may only be i, m, s, u, v (got "${flags}")`;
  try {
    new RegExp(source, flags);
    return undefined;
  } catch (error) {
    return `not a valid regular expression: ${(error as Error).message}`;
  }
}

/** Compiles a validated pattern; `patternProblem` must have accepted it. */
export function compilePattern(pattern: string): Matcher {
  const literal = REGEX_LITERAL.exec(pattern);
  if (!literal) return (value) => value.includes(pattern);
  const regex = new RegExp(literal[1] ?? '', literal[2]);
  return (value) => regex.test(value);
}

/** One matcher for a list: true when any pattern matches. */
export function compilePatterns(patterns: readonly string[]): Matcher | undefined {
  if (patterns.length === 0) return undefined;
  const matchers = patterns.map(compilePattern);
  if (matchers.length === 1) return matchers[0];
  return (value) => matchers.some((matches) => matches(value));
}
