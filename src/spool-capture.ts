// Large bodies stream to Sentry as they arrive, so to spool one whose forwarding fails midway the
// tunnel keeps its bytes: every chunk also goes to a temp file in the spool directory while it is
// forwarded. Success deletes the file; a transient failure reads the rest of the body into it, then
// fsyncs it and renames it into the spool.
import type { FileHandle } from 'node:fs/promises';
import { open, unlink } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { TunnelError } from './errors.js';
import { type EntryMeta, metaLine } from './spool-files.js';
import type { Spool, SpoolEntry } from './spool.js';

/** Bytes queued for the temp file beyond which the client's upload is paused (disk slower than network). */
const FILE_QUEUE_BYTES = 1024 * 1024;

export class BodyCapture {
  /** What goes upstream instead of the source: the same bytes. */
  readonly stream = new PassThrough();
  #size = 0;
  /** Upstream no longer reads `stream` (it failed, or the capture is being committed). */
  #abandoned = false;
  #detached = false;
  #fileError: unknown;
  /** Writes to the temp file, in order. */
  #fileQueue: Promise<void> = Promise.resolve();
  #fileQueued = 0;
  readonly #paused = { file: false, out: false };
  readonly #ended: Promise<void>;
  readonly #onData = (chunk: Buffer) => this.#write(chunk);

  private constructor(
    private readonly spool: Spool,
    private readonly meta: EntryMeta,
    private readonly source: Readable,
    private readonly temp: string,
    private readonly handle: FileHandle,
  ) {
    this.#ended = new Promise<void>((resolve, reject) => {
      source.once('end', () => {
        if (!this.#abandoned && !this.stream.destroyed) this.stream.end();
        resolve();
      });
      source.once('error', (error) => {
        this.stream.destroy(error);
        reject(error);
      });
      source.once('close', () => reject(new TunnelError('request_aborted')));
    });
    this.#ended.catch(() => {});
    const outFreed = () => {
      this.#paused.out = false;
      this.#maybeResume();
    };
    this.stream.on('drain', outFreed);
    this.stream.on('close', () => {
      this.#abandoned = true;
      outFreed();
    });
    this.stream.on('error', () => {});
  }

  static async start(spool: Spool, meta: EntryMeta, source: Readable): Promise<BodyCapture> {
    const temp = spool.tempPath();
    const handle = await open(temp, 'wx');
    const capture = new BodyCapture(spool, meta, source, temp, handle);
    const line = metaLine(meta);
    capture.#size = line.length;
    capture.#toFile(line);
    source.on('data', capture.#onData);
    return capture;
  }

  #write(chunk: Buffer): void {
    this.#size += chunk.length;
    const fileOk = this.#toFile(chunk);
    const outOk = this.#abandoned || this.stream.destroyed || this.stream.write(chunk);
    if (!fileOk) this.#paused.file = true;
    if (!outOk) this.#paused.out = true;
    if (!fileOk || !outOk) this.source.pause();
  }

  /** Queues `chunk` for the temp file; false when the queue is long enough to pause the source. */
  #toFile(chunk: Buffer): boolean {
    if (this.#fileError !== undefined) return true;
    this.#fileQueued += chunk.length;
    this.#fileQueue = this.#fileQueue.then(async () => {
      try {
        if (this.#fileError === undefined) await writeAll(this.handle, chunk);
      } catch (error) {
        this.#fileError ??= error;
      }
      this.#fileQueued -= chunk.length;
      if (this.#paused.file && (this.#fileQueued === 0 || this.#fileError !== undefined)) {
        this.#paused.file = false;
        this.#maybeResume();
      }
    });
    return this.#fileQueued < FILE_QUEUE_BYTES;
  }

  #maybeResume(): void {
    if (!this.#detached && !this.#paused.file && !this.#paused.out) this.source.resume();
  }

  /** Forwarding succeeded: forget the bytes. */
  discard(): void {
    this.#detach();
    this.#fileError ??= new Error('discarded');
    void this.#fileQueue
      .then(() => this.handle.close())
      .then(() => unlink(this.temp))
      .catch(() => {});
  }

  /**
   * Forwarding failed transiently: read the rest of the body, fsync, rename into the spool. Rejects
   * with the body's own failure (client gone, limit exceeded), spool_full or spool_write_failed.
   */
  async commit(): Promise<SpoolEntry> {
    this.#abandoned = true;
    this.#paused.out = false;
    this.#maybeResume();
    try {
      await this.#ended;
      await this.#fileQueue;
      if (this.#fileError !== undefined) throw new TunnelError('spool_write_failed', { cause: this.#fileError });
      await this.handle.sync();
    } catch (error) {
      this.discard();
      throw error;
    }
    this.#detach();
    await this.handle.close().catch(() => {});
    return this.spool.adopt(this.temp, this.meta, this.#size);
  }

  #detach(): void {
    if (this.#detached) return;
    this.#detached = true;
    this.source.off('data', this.#onData);
  }
}

async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  for (let offset = 0; offset < chunk.length; ) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}
