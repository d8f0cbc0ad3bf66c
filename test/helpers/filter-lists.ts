// The filter lists Debian's webext-ublock-origin-chromium installs, and @ghostery/adblocker over them: tests that
// need them skip with a printed reason locally and fail under CI when they are missing.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { FiltersEngine, Request } from '@ghostery/adblocker';

export const UBLOCK_ASSETS = process.env.UBLOCK_ASSETS_DIR ?? '/usr/share/chromium/extensions/ublock-origin/assets';
/** The lists scripts/blocked-paths.js reads, in the same order. */
export const LIST_FILES = {
  EasyList: 'thirdparties/easylist/easylist.txt',
  EasyPrivacy: 'thirdparties/easylist/easyprivacy.txt',
  'uBlock filters': 'ublock/filters.min.txt',
  'uBlock filters – Privacy': 'ublock/privacy.min.txt',
} as const;

/** Why the filter-list tests cannot run here, or undefined when they can. Under CI that is an error, not a skip. */
export function filterListsMissing(): string | undefined {
  const missing = Object.values(LIST_FILES).filter((file) => !existsSync(`${UBLOCK_ASSETS}/${file}`));
  if (missing.length === 0) return undefined;
  const reason = `${missing.map((file) => `${UBLOCK_ASSETS}/${file}`).join(', ')} not found (apt-get install webext-ublock-origin-chromium, or set UBLOCK_ASSETS_DIR)`;
  if (process.env.CI) throw new Error(`CI is set and the ad-blocker tests need the filter lists: ${reason}`);
  console.warn(`skipping the ad-blocker tests: ${reason}`);
  return reason;
}

/** Every list as one text, as the engine parses it. */
export function filterListsText(): string {
  return Object.values(LIST_FILES)
    .map((file) => readFileSync(`${UBLOCK_ASSETS}/${file}`, 'utf8'))
    .join('\n');
}

/** The installed package's Debian version, e.g. "1.67.0+dfsg-1~deb12u1". */
export function installedListsVersion(): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', 'webext-ublock-origin-chromium'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

export function filtersEngine(): FiltersEngine {
  return FiltersEngine.parse(filterListsText(), { loadCosmeticFilters: false, debug: true, enableOptimizations: false });
}

/** The rule that blocks a fetch of `url` from a page at `pageUrl`, or undefined when the engine lets it through. */
export function blockedBy(engine: FiltersEngine, url: string, pageUrl = 'https://app.example.com/'): string | undefined {
  const { match, filter } = engine.match(Request.fromRawDetails({ url, sourceUrl: pageUrl, type: 'xhr' }));
  return match ? (filter?.rawLine ?? filter?.toString() ?? 'unknown rule') : undefined;
}
