// Which generic ad-blocker rule (from the filter lists in blocked-paths.ts) would block a tunnel path, for check-config's warning.
import { BLOCKED_PATH_RULES, BLOCKED_PATHS_SOURCE } from './blocked-paths.js';
import type { ConfigProblem } from './problems.js';

export interface BlockingRule {
  /** The rule as the list writes it, e.g. "/log/sentry/*". */
  readonly rule: string;
  /** The list it comes from, e.g. "EasyPrivacy". */
  readonly list: string;
}

/** The site rules are tried on: only the path varies, and no kept rule blocks this site's root. */
export const PROBE_ORIGIN = 'https://app.example.com';

/** Paths no rule of the lists blocks (check-config suggests them; a test keeps them true). */
export const NEUTRAL_PATHS = ['/tunnel', '/api/sentry-tunnel'] as const;

/**
 * A network rule's URL pattern as the engine reads it (@ghostery/adblocker's compileRegex): `*` any
 * characters, `^` a separator or the end, a leading or trailing `|` anchors; case-insensitive unless
 * $match-case. Only the shapes scripts/blocked-paths.js keeps: no `||host`, no /regex/.
 */
export function patternRegex(rule: string): RegExp {
  const body = rule.startsWith('@@') ? rule.slice(2) : rule;
  const dollar = body.indexOf('$');
  const options = dollar === -1 ? [] : body.slice(dollar + 1).split(',');
  let pattern = dollar === -1 ? body : body.slice(0, dollar);
  const left = pattern.startsWith('|');
  const right = pattern.endsWith('|') && pattern.length > 1;
  pattern = pattern.slice(left ? 1 : 0, right ? -1 : undefined);
  const source = pattern
    .replace(/[.+?${}()|[\]\\/]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\^/g, '(?:[^\\w\\d_.%-]|$)');
  return new RegExp(`${left ? '^' : ''}${source}${right ? '$' : ''}`, options.includes('match-case') ? '' : 'i');
}

interface CompiledRule extends BlockingRule {
  readonly exception: boolean;
  readonly regex: RegExp;
}

let compiled: readonly CompiledRule[] | undefined;

function rules(): readonly CompiledRule[] {
  compiled ??= BLOCKED_PATH_RULES.map(([list, rule]) => ({
    rule,
    list: BLOCKED_PATHS_SOURCE.lists[list] ?? 'unknown',
    exception: rule.startsWith('@@'),
    regex: patternRegex(rule),
  }));
  return compiled;
}

/** The first generic rule that blocks a same-site fetch to `path`, unless a generic exception lets it through. */
export function blockingRule(path: string): BlockingRule | undefined {
  const url = `${PROBE_ORIGIN}${path}`;
  let blocking: CompiledRule | undefined;
  for (const rule of rules()) {
    if (!rule.regex.test(url)) continue;
    if (rule.exception) return undefined;
    blocking ??= rule;
  }
  return blocking && { rule: blocking.rule, list: blocking.list };
}

/** A warning for each configured path (and {path}/<project>) that a generic rule blocks. */
export function blockedPathWarnings(configured: string | readonly string[], projectNames: readonly string[]): ConfigProblem[] {
  const paths = typeof configured === 'string' ? [configured] : configured;
  const warnings: ConfigProblem[] = [];
  paths.forEach((path, index) => {
    const where = typeof configured === 'string' ? 'server.path' : `server.path.${index}`;
    for (const candidate of [path, ...projectNames.map((name) => `${path}/${encodeURIComponent(name)}`)]) {
      const found = blockingRule(candidate);
      if (!found) continue;
      const neutral = NEUTRAL_PATHS.find((other) => !paths.includes(other)) ?? NEUTRAL_PATHS[0];
      warnings.push({
        path: where,
        message: `ad blockers block POST ${candidate}: ${found.list}'s generic rule "${found.rule}" matches it on any site (lists of ${BLOCKED_PATHS_SOURCE.package} ${BLOCKED_PATHS_SOURCE.version})`,
        hint: `choose a neutral path such as "${neutral}", and keep this one listed while clients still post to it: "path": ["${neutral}", "${path}"]`,
      });
      break;
    }
  });
  return warnings;
}
