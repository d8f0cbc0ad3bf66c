// Large bodies stream to Sentry as they arrive, so to spool one whose forwarding fails midway the
// tunnel keeps its bytes: every chunk also goes to a temp file in the spool directory while it is
// forwarded. Success deletes the file; a transient failure reads the rest of the body into it, then
// fsyncs it and renames it into the spool. The copy counts against spool.maxBytes while it is written:
// past it, the copy stops and the body can no longer be spooled (503 spool_full if Sentry fails).
import type { FileHandle } from 'node:fs/promises';
import { open, unlink } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { TunnelError } from '../errors.js';
import { type EntryMeta, metaLine } from './files.js';
import type { Spool, SpoolEntry } from './spool.js';

/** Bytes queued for the temp file beyond which the client's upload is paused (disk slower than network). */
const FILE_QUEUE_BYTES = 1024 * 1024;

export class BodyCapture {
  /** What goes upstream instead of the source: the same bytes. */
  readonly stream = new PassThrough();
  #size = 0;
  /** Bytes counted against spool.maxBytes for the temp file (Spool.reserve)… */
  #reserved = 0;
  /** …of which not yet written: the declared Content-Length is reserved when the capture starts. */
  #prepaid = 0;
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

  /** `declaredBytes`: the body's Content-Length, when it has one (reserved whole, up front). */
  static async start(spool: Spool, meta: EntryMeta, source: Readable, declaredBytes?: number): Promise<BodyCapture> {
    const temp = spool.tempPath();
    const handle = await open(temp, 'wx');
    const capture = new BodyCapture(spool, meta, source, temp, handle);
    const line = metaLine(meta);
    if (declaredBytes !== undefined) {
      if (spool.reserve(line.length + declaredBytes)) capture.#reserved = capture.#prepaid = line.length + declaredBytes;
      else capture.#fileError = spool.fullError();
    }
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
    const unpaid = chunk.length - this.#prepaid;
    if (unpaid <= 0) this.#prepaid -= chunk.length;
    else if (this.spool.reserve(unpaid)) {
      this.#reserved += unpaid;
      this.#prepaid = 0;
    } else {
      // No room for the copy: the body still goes to Sentry, but cannot be spooled if that fails.
      this.#fileError = this.spool.fullError();
      return true;
    }
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
    this.#release();
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
      const fileError = this.#fileError;
      if (fileError !== undefined) throw fileError instanceof TunnelError ? fileError : new TunnelError('spool_write_failed', { cause: fileError });
      await this.handle.sync();
    } catch (error) {
      this.discard();
      throw error;
    }
    this.#detach();
    await this.handle.close().catch(() => {});
    const reserved = this.#reserved;
    this.#reserved = 0;
    return this.spool.adopt(this.temp, this.meta, this.#size, reserved);
  }

  #release(): void {
    this.spool.release(this.#reserved);
    this.#reserved = 0;
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
