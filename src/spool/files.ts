// The spool's files on disk: entry names and format, durable writes (temp file, fsync, rename, fsync
// the directory), the directory lock, and the start-up scan that cleans what a crash left behind.
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { constants } from 'node:fs';
import { access, mkdir, open, readFile, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * One spooled envelope is one file `<receivedAt>-<seq>-<random>.<project>.envelope`: a JSON line with
 * the metadata, then the exact body bytes. Names sort oldest first; a file exists only once complete.
 */
const ENTRY_NAME = /^(\d{15})-([0-9a-z]{6})-([0-9a-f]{8})\.([\w-]+)\.envelope$/;
/** In-progress writes; whatever carries this prefix at start-up is a half-written leftover. */
export const TEMP_PREFIX = '.tmp-';
const LOCK_NAME = '.lock';
const CORRUPT_SUFFIX = '.corrupt';

export interface EntryMeta {
  readonly v: 1;
  readonly project: string;
  readonly receivedAt: number;
  /** The request headers sent to Sentry (content type and encoding, user agent, X-Forwarded-For, …), without Content-Length. */
  readonly headers: Readonly<Record<string, string>>;
  /** The parsed envelope header line (event_id, dsn, sdk, …), for the synthetic reply and wrappers. */
  readonly header: Readonly<Record<string, unknown>>;
}

export interface EntryName {
  readonly name: string;
  readonly project: string;
  readonly receivedAt: number;
}

let sequence = 0;

export function newEntryName(project: string, receivedAt: number): string {
  const seq = (sequence++ % 36 ** 6).toString(36).padStart(6, '0');
  return `${String(receivedAt).padStart(15, '0')}-${seq}-${randomBytes(4).toString('hex')}.${project}.envelope`;
}

export function parseEntryName(name: string): EntryName | undefined {
  const match = ENTRY_NAME.exec(name);
  if (!match) return undefined;
  return { name, project: match[4] as string, receivedAt: Number(match[1]) };
}

export function tempName(): string {
  return `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`;
}

export function metaLine(meta: EntryMeta): Buffer {
  return Buffer.from(`${JSON.stringify(meta)}\n`);
}

/** Splits an entry file into its metadata and body; throws when the file is not an entry. */
export function parseEntry(bytes: Buffer): { meta: EntryMeta; body: Buffer } {
  const newline = bytes.indexOf(0x0a);
  if (newline === -1) throw new Error('no metadata line');
  const meta = JSON.parse(bytes.subarray(0, newline).toString('utf8')) as EntryMeta;
  if (meta?.v !== 1 || typeof meta.project !== 'string' || typeof meta.headers !== 'object' || meta.headers === null) {
    throw new Error('unknown metadata format');
  }
  return { meta, body: bytes.subarray(newline + 1) };
}

export function readEntry(dir: string, name: string): Promise<{ meta: EntryMeta; body: Buffer }> {
  return readFile(join(dir, name)).then(parseEntry);
}

/** Writes `parts` to a new temp file, fsyncs it and renames it to `name`; the caller syncs the directory. */
export async function writeDurably(dir: string, name: string, parts: readonly Buffer[]): Promise<void> {
  const temp = join(dir, tempName());
  const file = await open(temp, 'wx');
  try {
    await file.writev(parts as Buffer[]);
    await file.sync();
  } catch (error) {
    await file.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw error;
  }
  await file.close();
  await renameOrClean(temp, join(dir, name));
}

export async function renameOrClean(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (error) {
    await unlink(from).catch(() => {});
    throw error;
  }
}

/**
 * fsync of the directory makes renames and new names durable. Concurrent callers share one sync when
 * they can: a caller arriving while a sync runs waits for the next one (its rename may be too late
 * for the running one).
 */
export class DirectorySync {
  #running: Promise<void> | undefined;
  #next: Promise<void> | undefined;

  constructor(private readonly dir: string) {}

  sync(): Promise<void> {
    if (!this.#running) {
      this.#running = this.#syncOnce().finally(() => {
        this.#running = undefined;
      });
      return this.#running;
    }
    this.#next ??= this.#running
      .catch(() => {})
      .then(() => {
        this.#next = undefined;
        return this.sync();
      });
    return this.#next;
  }

  async #syncOnce(): Promise<void> {
    const handle = await open(this.dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

export interface ScannedEntry extends EntryName {
  readonly size: number;
}

export interface ScanResult {
  readonly entries: ScannedEntry[];
  /** Half-written temp files removed. */
  readonly tempsRemoved: number;
  /** Names that are neither entries nor ours, left alone. */
  readonly foreign: string[];
}

/** Lists complete entries oldest first and deletes half-written temp files (the lock guarantees they are stale). */
export async function scanDirectory(dir: string): Promise<ScanResult> {
  const entries: ScannedEntry[] = [];
  const foreign: string[] = [];
  let tempsRemoved = 0;
  for (const name of (await readdir(dir)).sort()) {
    if (name === LOCK_NAME || name.endsWith(CORRUPT_SUFFIX)) continue;
    if (name.startsWith(TEMP_PREFIX)) {
      await unlink(join(dir, name)).catch(() => {});
      tempsRemoved++;
      continue;
    }
    const parsed = parseEntryName(name);
    if (!parsed) {
      foreign.push(name);
      continue;
    }
    const info = await stat(join(dir, name)).catch(() => undefined);
    if (info?.isFile()) entries.push({ ...parsed, size: info.size });
  }
  return { entries, tempsRemoved, foreign };
}

/** Sets an unreadable entry aside (kept for a person to look at, no longer sent or counted). */
export function setAside(dir: string, name: string): Promise<void> {
  return rename(join(dir, name), join(dir, `${name}${CORRUPT_SUFFIX}`));
}

const HELD = Symbol.for('sentry-tunnel.spool-dirs');
const heldInProcess: Set<string> = ((globalThis as Record<symbol, Set<string> | undefined>)[HELD] ??= new Set());

/**
 * Creates the directory, proves it is writable by writing, fsyncing and deleting a probe file, and
 * takes the lock: two tunnels sharing one spool would delete each other's in-progress files.
 * Throws an Error whose message says what is wrong.
 */
export async function prepareDirectory(dir: string): Promise<{ release(): Promise<void>; previousOwner?: string }> {
  try {
    await makeDirectory(dir);
    const probe = join(dir, tempName());
    const handle = await open(probe, 'wx');
    await handle.write('probe');
    await handle.sync();
    await handle.close();
    await unlink(probe);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    const message = (error as Error).message;
    // Node's fs errors already begin with their code ("ENOENT: no such file or directory, …").
    throw new Error(`spool.dir ${dir} is not a writable directory (${message.startsWith(`${code}: `) ? message : `${code}: ${message}`})`);
  }
  const lock = join(dir, LOCK_NAME);
  // The lock file tells processes apart; two tunnels in one process (a second createTunnel after a hot
  // reload) are told apart here, in a registry every copy of this module shares.
  if (heldInProcess.has(dir)) {
    throw new Error(`spool.dir ${dir} is already used by another tunnel in this process: close() the first one (after a hot reload too), or give each tunnel its own spool.dir`);
  }
  const me = JSON.stringify({ pid: process.pid, hostname: hostname() });
  let previousOwner: string | undefined;
  const existing = await readFile(lock, 'utf8').catch(() => undefined);
  if (existing !== undefined) {
    const owner = parseLock(existing);
    if (owner && owner.hostname === hostname() && owner.pid !== process.pid && isAlive(owner.pid)) {
      throw new Error(`spool.dir ${dir} is in use by another sentry-tunnel (pid ${owner.pid}); give each tunnel its own spool directory (or delete ${lock} if that process is not a tunnel)`);
    }
    previousOwner = owner ? `pid ${owner.pid} on ${owner.hostname}` : 'unknown';
  }
  await writeDurably(dir, LOCK_NAME, [Buffer.from(me)]);
  heldInProcess.add(dir);
  return {
    previousOwner,
    release: async () => {
      heldInProcess.delete(dir);
      const current = await readFile(lock, 'utf8').catch(() => undefined);
      if (current === me) await unlink(lock).catch(() => {});
    },
  };
}

/**
 * `mkdir -p`, one level at a time. Node's `mkdir(dir, { recursive: true })` never settles (and keeps a
 * thread-pool thread spinning) when the kernel answers ENOENT for a directory whose parent exists, as
 * /proc and /sys do: serve would hang before listening, saying nothing. Here each level is tried at
 * most twice, so such a directory fails with its ENOENT.
 */
async function makeDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    const parent = dirname(dir);
    if (code !== 'ENOENT' || parent === dir) throw error;
    await makeDirectory(parent);
    await mkdir(dir).catch((again: NodeJS.ErrnoException) => {
      if (again.code !== 'EEXIST') throw again;
    });
  }
}

function parseLock(text: string): { pid: number; hostname: string } | undefined {
  try {
    const value = JSON.parse(text) as { pid?: unknown; hostname?: unknown };
    return typeof value.pid === 'number' && typeof value.hostname === 'string' ? { pid: value.pid, hostname: value.hostname } : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Why `dir` could not be used as the spool, judged without creating anything (for check-config):
 * an existing directory must be writable, a missing one must be creatable in its nearest existing parent.
 */
export async function spoolDirProblem(dir: string): Promise<string | undefined> {
  let path = dir;
  for (let depth = 0; depth < 256; depth++) {
    const info = await stat(path).catch((error: NodeJS.ErrnoException) => error);
    if (info instanceof Error) {
      if (info.code !== 'ENOENT') return `${info.code ?? 'error'}: ${info.message}`;
      const parent = dirname(path);
      if (parent === path) return 'no existing parent directory';
      path = parent;
      continue;
    }
    if (!info.isDirectory()) return `${path} is not a directory`;
    return access(path, constants.W_OK | constants.X_OK).then(
      () => undefined,
      (error: NodeJS.ErrnoException) => `${path} is not writable (${error.code ?? 'error'})`,
    );
  }
  return 'path too deep';
}
