// The spool: envelopes Sentry could not take yet, one durable file each (see files.ts), indexed
// in memory per project oldest first, within spool.maxBytes and spool.maxAgeMs.
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { TunnelError } from '../errors.js';
import {
  DirectorySync,
  type EntryMeta,
  metaLine,
  newEntryName,
  prepareDirectory,
  readEntry,
  renameOrClean,
  scanDirectory,
  setAside,
  tempName,
  writeDurably,
} from './files.js';

export interface SpoolOptions {
  readonly dir: string;
  readonly maxBytes: number;
  readonly maxAgeMs: number;
}

export interface SpoolEntry {
  readonly name: string;
  readonly project: string;
  readonly receivedAt: number;
  /** Bytes on disk (metadata line and body). */
  readonly size: number;
  /** Being sent by the drainer right now: not to be expired under its feet. */
  sending: boolean;
}

/** What the spool holds right now (for /readyz and metrics). */
export interface SpoolStats {
  readonly envelopes: number;
  readonly bytes: number;
  /** The spool refused an envelope for want of space, and nothing has left it since. */
  readonly full: boolean;
}

/** Since start: entries written, and how entries left the spool. */
export interface SpoolCounters {
  spooled: number;
  delivered: number;
  /** Answered with a final 4xx by Sentry and deleted. */
  rejected: number;
  /** Older than spool.maxAgeMs and deleted. */
  expired: number;
  /** Unreadable files renamed to *.corrupt. */
  setAside: number;
}

export type RemovalReason = 'delivered' | 'rejected' | 'expired';

export class Spool {
  readonly counters: SpoolCounters = { spooled: 0, delivered: 0, rejected: 0, expired: 0, setAside: 0 };
  readonly #queues = new Map<string, SpoolEntry[]>();
  #envelopes = 0;
  #full = false;
  #bytes = 0;
  /** Bytes of writes and temp copies in progress (reserve), so together they cannot overshoot maxBytes. */
  #reserved = 0;
  readonly #dirSync: DirectorySync;

  private constructor(
    readonly options: SpoolOptions,
    private readonly logger: Logger,
    private readonly lock: { release(): Promise<void> },
  ) {
    this.#dirSync = new DirectorySync(options.dir);
  }

  /** Creates the directory if needed, takes its lock and indexes what a previous run left. Throws an Error saying what is wrong. */
  static async open(options: SpoolOptions, logger: Logger): Promise<Spool> {
    const lock = await prepareDirectory(options.dir);
    const spool = new Spool(options, logger, lock);
    const scan = await scanDirectory(options.dir);
    for (const entry of scan.entries) spool.#index({ ...entry, sending: false });
    logger.info(
      { dir: options.dir, envelopes: spool.#envelopes, bytes: spool.#bytes, tempFilesRemoved: scan.tempsRemoved, ...(scan.foreign.length ? { foreignFiles: scan.foreign.length } : {}) },
      spool.#envelopes > 0 ? `spool: resuming ${spool.#envelopes} envelope(s) from ${options.dir}` : `spool: ${options.dir}`,
    );
    // A lock left behind means the previous tunnel did not stop cleanly (crash, SIGKILL, power loss).
    if (lock.previousOwner) logger.info({ previousOwner: lock.previousOwner }, 'spool: took over the lock of a tunnel that did not stop cleanly');
    return spool;
  }

  stats(): SpoolStats {
    return { envelopes: this.#envelopes, bytes: this.#bytes, full: this.#full };
  }

  /** Projects that have entries, including ones no longer configured. */
  projects(): string[] {
    return [...this.#queues.keys()];
  }

  oldest(project: string): SpoolEntry | undefined {
    return this.#queues.get(project)?.[0];
  }

  /** Writes a buffered envelope durably. Rejects with spool_full or spool_write_failed. */
  async write(meta: EntryMeta, body: Buffer): Promise<SpoolEntry> {
    const line = metaLine(meta);
    const size = line.length + body.length;
    const name = newEntryName(meta.project, meta.receivedAt);
    return this.#commit(size, meta, name, () => writeDurably(this.options.dir, name, [line, body]));
  }

  /** A path for a temp file in the spool directory (cleaned at start-up if a crash leaves it). */
  tempPath(): string {
    return join(this.options.dir, tempName());
  }

  /**
   * Room for `bytes` more on disk, counted against spool.maxBytes until released: for entries being
   * written, and for temp copies of streamed bodies on their way to Sentry (released when adopted),
   * so writes and copies in flight cannot together fill the disk past it.
   */
  reserve(bytes: number): boolean {
    if (this.#bytes + this.#reserved + bytes > this.options.maxBytes) return false;
    this.#reserved += bytes;
    return true;
  }

  release(bytes: number): void {
    this.#reserved -= bytes;
  }

  fullError(): TunnelError {
    return new TunnelError('spool_full', { message: `Sentry could not be reached and the spool is full (spool.maxBytes ${this.options.maxBytes}).` });
  }

  /**
   * Renames an already fsynced temp file of `size` bytes, `reserved` of them reserved with
   * reserve(), into the spool. Rejects with spool_full or spool_write_failed.
   */
  adopt(temp: string, meta: EntryMeta, size: number, reserved: number): Promise<SpoolEntry> {
    this.release(reserved);
    const name = newEntryName(meta.project, meta.receivedAt);
    return this.#commit(size, meta, name, () => renameOrClean(temp, join(this.options.dir, name))).catch(async (error: unknown) => {
      await unlink(temp).catch(() => {});
      throw error;
    });
  }

  async #commit(size: number, meta: EntryMeta, name: string, write: () => Promise<void>): Promise<SpoolEntry> {
    if (!this.reserve(size)) {
      this.#full = true;
      throw this.fullError();
    }
    let renamed = false;
    try {
      await write();
      renamed = true;
      await this.#dirSync.sync();
    } catch (error) {
      // Renamed but the directory fsync failed: the file is there and will be sent; count it as spooled.
      if (!renamed) throw new TunnelError('spool_write_failed', { cause: error });
      this.logger.error({ err: error, dir: this.options.dir }, 'spool: directory fsync failed');
    } finally {
      this.release(size);
    }
    const entry: SpoolEntry = { name, project: meta.project, receivedAt: meta.receivedAt, size, sending: false };
    this.#index(entry);
    this.counters.spooled++;
    return entry;
  }

  read(entry: SpoolEntry): Promise<{ meta: EntryMeta; body: Buffer }> {
    return readEntry(this.options.dir, entry.name);
  }

  async remove(entry: SpoolEntry, reason: RemovalReason): Promise<void> {
    if (!this.#unindex(entry)) return;
    this.counters[reason]++;
    // No directory fsync: a delete lost to a crash only means one more delivery (at-least-once).
    await unlink(join(this.options.dir, entry.name)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') this.logger.error({ err: error, entry: entry.name }, 'spool: could not delete an entry');
    });
  }

  /** Renames an entry that cannot be read to *.corrupt, out of the way of the drainer. */
  async setAside(entry: SpoolEntry, cause: unknown): Promise<void> {
    if (!this.#unindex(entry)) return;
    this.counters.setAside++;
    this.logger.error({ err: cause, entry: entry.name, project: entry.project }, 'spool: unreadable entry set aside as .corrupt');
    await setAside(this.options.dir, entry.name).catch(() => {});
  }

  /** Removes entries older than maxAgeMs (never one being sent), one log line each. */
  async expire(now = Date.now()): Promise<number> {
    let expired = 0;
    for (const [project, queue] of this.#queues) {
      for (let head = queue[0]; head && !head.sending && now - head.receivedAt > this.options.maxAgeMs; head = queue[0]) {
        await this.remove(head, 'expired');
        expired++;
        this.logger.warn(
          { project, entry: head.name, ageMs: now - head.receivedAt, expired: this.counters.expired },
          'spool: envelope older than spool.maxAgeMs removed without delivery',
        );
      }
    }
    return expired;
  }

  isExpired(entry: SpoolEntry, now = Date.now()): boolean {
    return now - entry.receivedAt > this.options.maxAgeMs;
  }

  close(): Promise<void> {
    return this.lock.release();
  }

  #index(entry: SpoolEntry): void {
    let queue = this.#queues.get(entry.project);
    if (!queue) this.#queues.set(entry.project, (queue = []));
    const last = queue[queue.length - 1];
    queue.push(entry);
    // Names sort by receive time; a clock step backwards is the only way to arrive out of order.
    if (last && last.name > entry.name) queue.sort((a, b) => (a.name < b.name ? -1 : 1));
    this.#envelopes++;
    this.#bytes += entry.size;
  }

  #unindex(entry: SpoolEntry): boolean {
    const queue = this.#queues.get(entry.project);
    const at = queue ? (queue[0] === entry ? 0 : queue.indexOf(entry)) : -1;
    if (!queue || at === -1) return false;
    if (at === 0) queue.shift();
    else queue.splice(at, 1);
    if (queue.length === 0) this.#queues.delete(entry.project);
    this.#envelopes--;
    this.#bytes -= entry.size;
    this.#full = false;
    return true;
  }
}
