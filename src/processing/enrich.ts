// The `enrich` settings applied to one event or transaction: configured tags (the SDK's own tag of the
// same name wins unless overrideTags) and, opt-in, the client's address as user.ip_address.
import type { Config } from '../config/schema.js';
import { type Edit, type JsonObjectFields, readField, setFields } from './json-fields.js';

/** What the browser SDK sends when it wants Sentry to fill in the address itself. */
const AUTO_IP = '{{auto}}';

export class Enricher {
  readonly #tags: readonly (readonly [string, string])[];
  readonly #overrideTags: boolean;
  readonly clientIp: boolean;

  constructor(enrich: Config['enrich']) {
    this.#tags = Object.entries(enrich.tags);
    this.#overrideTags = enrich.overrideTags;
    this.clientIp = enrich.clientIp;
  }

  get isEmpty(): boolean {
    return this.#tags.length === 0 && !this.clientIp;
  }

  /** The edits that enrich this payload; none when it already carries everything. */
  edits(object: JsonObjectFields, clientIp: string | undefined): Edit[] {
    const changes = new Map<string, unknown>();
    if (this.#tags.length > 0) {
      const tags = this.#mergeTags(object.fields.has('tags') ? readField(object, 'tags') : undefined);
      if (tags !== undefined) changes.set('tags', tags);
    }
    if (this.clientIp && clientIp) {
      const user = withIpAddress(object.fields.has('user') ? readField(object, 'user') : undefined, clientIp);
      if (user !== undefined) changes.set('user', user);
    }
    return changes.size > 0 ? setFields(object, changes) : [];
  }

  /** The new tags value, or undefined when nothing changes (or the SDK sent something that is not tags). */
  #mergeTags(current: unknown): unknown {
    if (current === undefined || current === null) return Object.fromEntries(this.#tags);
    if (Array.isArray(current)) {
      // Tags may also arrive as [key, value] pairs; keep that form.
      const pairs = [...current];
      let changed = false;
      for (const [key, value] of this.#tags) {
        const index = pairs.findIndex((pair) => Array.isArray(pair) && pair[0] === key);
        if (index === -1) pairs.push([key, value]);
        else if (this.#overrideTags && (pairs[index] as unknown[])[1] !== value) pairs[index] = [key, value];
        else continue;
        changed = true;
      }
      return changed ? pairs : undefined;
    }
    if (typeof current !== 'object') return undefined;
    const tags = { ...(current as Record<string, unknown>) };
    let changed = false;
    for (const [key, value] of this.#tags) {
      const present = Object.hasOwn(tags, key);
      if (present && (!this.#overrideTags || tags[key] === value)) continue;
      // defineProperty, not assignment: a tag named "__proto__" must stay a tag.
      Object.defineProperty(tags, key, { value, enumerable: true, writable: true, configurable: true });
      changed = true;
    }
    return changed ? tags : undefined;
  }
}

/** The user with ip_address set, unless the SDK already set a real address (or explicitly null). */
function withIpAddress(user: unknown, ip: string): unknown {
  if (user === undefined || user === null) return { ip_address: ip };
  if (typeof user !== 'object' || Array.isArray(user)) return undefined;
  const current = (user as Record<string, unknown>).ip_address;
  if (current !== undefined && current !== AUTO_IP) return undefined;
  return { ...(user as Record<string, unknown>), ip_address: ip };
}
