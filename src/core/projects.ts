// The allowlist: which configured project an envelope's DSN belongs to, and where that project's
// envelopes go upstream. Built once from the frozen config; lookups are a Map hit.
import type { Config } from '../config/schema.js';
import { type Dsn, type UpstreamTarget, envelopeTarget, normalizeDsn, parseDsn, redactDsn } from './dsn.js';

/** Distinct refused DSN strings remembered at most; past that the memory starts over. */
const MAX_REFUSED_DSNS = 1024;
/** Up to this many configured DSNs are compared one by one rather than looked up. */
const SCANNED_DSNS = 8;

export interface Project {
  readonly name: string;
  readonly dsn: Dsn;
  readonly target: UpstreamTarget;
  /** The DSN with its key shortened, safe for logs. */
  readonly redactedDsn: string;
}

export class ProjectRegistry {
  readonly byName: ReadonlyMap<string, Project>;
  readonly #byDsn = new Map<string, Project>();
  /** DSN strings exactly as configured (and as SDKs send them), to skip parsing in the common case. */
  readonly #byRawDsn = new Map<string, Project>();
  /**
   * The same, as a list while it is short: the DSN comes fresh from JSON.parse with every envelope, and
   * a Map hit would hash it first; comparing it with a few configured strings costs less (bench:instructions).
   */
  readonly #rawDsns: readonly (readonly [string, Project])[] | undefined;
  /** Client DSNs that belong to no project (undefined) or do not parse (null), bounded. */
  readonly #refused = new Map<string, undefined | null>();

  constructor(projects: Config['projects']) {
    const byName = new Map<string, Project>();
    for (const [name, { dsn: raw }] of Object.entries(projects)) {
      const parsed = parseDsn(raw);
      if (!parsed.ok) throw new Error(`projects.${name}.dsn: not a valid DSN: ${parsed.reason}`);
      const project: Project = { name, dsn: parsed.dsn, target: envelopeTarget(parsed.dsn), redactedDsn: redactDsn(parsed.dsn) };
      byName.set(name, project);
      this.#byDsn.set(normalizeDsn(parsed.dsn), project);
      this.#byRawDsn.set(raw, project);
    }
    this.byName = byName;
    this.#rawDsns = this.#byRawDsn.size <= SCANNED_DSNS ? [...this.#byRawDsn] : undefined;
  }

  /**
   * The project a client-sent DSN belongs to: `undefined` when it is valid but not configured,
   * `null` when it does not parse.
   */
  resolve(clientDsn: string): Project | undefined | null {
    const scanned = this.#rawDsns;
    if (scanned === undefined) {
      const exact = this.#byRawDsn.get(clientDsn);
      if (exact) return exact;
    } else {
      for (const [raw, project] of scanned) if (raw === clientDsn) return project;
    }
    // A flood of envelopes for a foreign DSN repeats the same few strings: parse each once.
    // has(), not get(): a foreign DSN is remembered as undefined.
    if (this.#refused.has(clientDsn)) return this.#refused.get(clientDsn);
    const parsed = parseDsn(clientDsn);
    const project = parsed.ok ? this.#byDsn.get(normalizeDsn(parsed.dsn)) : null;
    if (project) return project;
    if (this.#refused.size >= MAX_REFUSED_DSNS) this.#refused.clear();
    this.#refused.set(clientDsn, project);
    return project;
  }

  /** The distinct upstream origins, for connection pools and the start-up line. */
  origins(): string[] {
    return [...new Set([...this.byName.values()].map((project) => project.target.origin))];
  }
}
