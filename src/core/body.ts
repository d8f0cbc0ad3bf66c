// Reads a request body just far enough to know where it goes: the envelope header line, decoded if
// the client compressed it, under wire and decoded byte limits (the latter is the zip-bomb guard).
// Small bodies are buffered whole; larger ones are handed on as a stream of the untouched wire bytes,
// still counted and decoded on the way so the limits hold to the last byte — unless the caller asks
// for the whole body (processing rules), which is then read to the end and also kept decoded.
import { Buffer, isUtf8 } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { TunnelError } from '../errors.js';

export interface BodyLimits {
  readonly maxEnvelopeBytes: number;
  readonly maxDecodedBytes: number;
  readonly maxHeaderLineBytes: number;
  /** The whole body must have arrived within this time (slow-client guard). */
  readonly requestTimeoutMs: number;
}

export type ContentEncoding = 'identity' | 'gzip' | 'deflate' | 'br';

/** Bodies that end within this many wire bytes are forwarded from one buffer; longer ones stream. */
export const BUFFERED_BODY_BYTES = 256 * 1024;

const NEWLINE = 0x0a;
const EMPTY_HEADER: Readonly<Record<string, unknown>> = Object.freeze({});
const EMPTY_BODY = Buffer.alloc(0);
const INVALID_UTF8 = 'The envelope header line is not valid UTF-8; expected a Sentry envelope header.';

/** A body being read, as Deadlines keeps it: in a list, in the order its deadline falls. */
interface Watched {
  /** When the whole body must have arrived (a performance.now() time); Infinity when not watched. */
  deadline: number;
  previousWatched: Watched | undefined;
  nextWatched: Watched | undefined;
  expire(): void;
}

/**
 * The slow-client deadlines of the bodies being read, checked by one timer per timeout value, as
 * node:http checks its own request timeouts (connectionsCheckingInterval), rather than a setTimeout and
 * clearTimeout per request. A body is cut off within a tenth of the timeout (at most a second) after its
 * deadline passes; the timer stops once a check finds nothing to watch.
 *
 * The bodies are a linked list through the readers, not a Set: all share one timeout, so appending
 * keeps the list in deadline order and a check looks only at the expired ones. With a long-lived Set
 * of the readers instead, every scavenge kept the readers added since the last one and promoted them
 * (--trace-gc; +27k instructions per request in GC under bench:instructions), we think through the
 * Set's discarded hash tables, which stay in old space and keep pointing at young readers.
 */
class Deadlines {
  readonly #timeoutMs: number;
  readonly #intervalMs: number;
  #first: Watched | undefined;
  #last: Watched | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    this.#intervalMs = Math.max(10, Math.min(1_000, Math.ceil(timeoutMs / 10)));
  }

  /** `since`: when the request began (a performance.now() time). */
  watch(entry: Watched, since: number): void {
    entry.deadline = since + this.#timeoutMs;
    entry.previousWatched = this.#last;
    entry.nextWatched = undefined;
    if (this.#last) this.#last.nextWatched = entry;
    else this.#first = entry;
    this.#last = entry;
    this.#timer ??= setInterval(() => this.#check(), this.#intervalMs).unref();
  }

  unwatch(entry: Watched): void {
    if (entry.deadline === Number.POSITIVE_INFINITY) return;
    entry.deadline = Number.POSITIVE_INFINITY;
    const { previousWatched: previous, nextWatched: next } = entry;
    if (previous) previous.nextWatched = next;
    else this.#first = next;
    if (next) next.previousWatched = previous;
    else this.#last = previous;
    entry.previousWatched = entry.nextWatched = undefined;
  }

  #check(): void {
    if (this.#first === undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
      return;
    }
    const now = performance.now();
    // Each pass takes the first entry off the list, so the loop ends.
    for (let first = this.#first; first !== undefined && first.deadline <= now; first = this.#first) {
      this.unwatch(first);
      first.expire();
    }
  }
}

const deadlinesByTimeout = new Map<number, Deadlines>();

function deadlinesFor(timeoutMs: number): Deadlines {
  let deadlines = deadlinesByTimeout.get(timeoutMs);
  if (deadlines === undefined) {
    deadlines = new Deadlines(timeoutMs);
    deadlinesByTimeout.set(timeoutMs, deadlines);
  }
  return deadlines;
}

export function parseContentEncoding(header: string | undefined): ContentEncoding {
  const value = header?.trim().toLowerCase();
  if (!value || value === 'identity') return 'identity';
  if (value === 'gzip' || value === 'x-gzip') return 'gzip';
  if (value === 'deflate' || value === 'br') return value;
  throw new TunnelError('unsupported_encoding');
}

export interface EnvelopeHead {
  /** The parsed envelope header (the first line, a JSON object); unknown fields kept. */
  readonly header: Readonly<Record<string, unknown>>;
  /** The untouched wire bytes: the whole body, or a stream that yields all of it. */
  readonly body: Buffer | Transform;
  /** Wire bytes received so far (all of them when `body` is a Buffer). */
  readonly wireBytes: () => number;
  /** Why a streamed body was cut off (a limit, corrupt data, the client leaving), if it was. */
  readonly failure: () => TunnelError | undefined;
  /** The whole decoded body; only with the `whole` option (then `body` is always a Buffer too). */
  readonly decoded?: Buffer;
}

export interface ReadOptions {
  /**
   * Read the whole body, however large (still within the limits), and keep its decoded bytes: for
   * stages that must see every item (processing). Without it, large bodies stream.
   */
  readonly whole?: boolean;
  /** Gets the wire bytes read when the body is refused, so the request log says what arrived. */
  readonly record?: { bytesIn: number };
  /**
   * When the request began (a performance.now() time), which requestTimeoutMs counts from; by default
   * now. A caller that has read the clock already saves a read (~500 instructions, bench:instructions).
   */
  readonly since?: number;
  /**
   * The body tells of a broken-off upload by 'close' alone and emits 'error' only to listeners
   * (node:http's IncomingMessage): no 'error' listener is added, one fewer per request. Other streams
   * (a Web body turned Readable) emit 'error' regardless, which must have a listener.
   */
  readonly closeReportsAbort?: boolean;
}

/** Told once how reading the head ended; a callback pair rather than a promise, one fewer per request (bench:instructions). */
export interface HeadListener {
  /**
   * The header is known. Called from the request's own event (synchronously, for a body read to its
   * end) or, when the body streams, in a microtask after the event.
   */
  onHead(head: EnvelopeHead): void;
  /**
   * A TunnelError: empty_body, header_too_large, invalid_envelope_header, envelope_too_large,
   * invalid_body_encoding, request_timeout or request_aborted.
   */
  onHeadFailed(error: TunnelError): void;
}

/** Reads `req` until the envelope header line is known (and, for small bodies, to the end), then tells `listener`. */
export function readEnvelopeHead(req: Readable, encoding: ContentEncoding, limits: BodyLimits, options: ReadOptions, listener: HeadListener): void {
  new BodyReader(req, encoding, limits, options.whole === true, options.record).read(options.since ?? performance.now(), listener, options.closeReportsAbort === true);
}

/**
 * Reads one body, and once the header is known is that body's EnvelopeHead too: no second object, no
 * closures for wireBytes() and failure(); its listeners are made once, with the reader.
 */
class BodyReader implements EnvelopeHead, Watched {
  header: Readonly<Record<string, unknown>> = EMPTY_HEADER;
  body: Buffer | Transform = EMPTY_BODY;
  decoded: Buffer | undefined;
  #wireBytes = 0;
  #decodedBytes = 0;
  /** The wire chunks buffered so far: the first alone (a small body usually arrives as one), then all of them in a list. */
  #firstChunk: Buffer | undefined;
  #chunks: Buffer[] | undefined;
  #bufferedBytes = 0;
  /** The header line's parts while it spans chunks (none when it ends in the first). */
  #headerParts: Buffer[] | undefined;
  #headerBytes = 0;
  /** The header line is the first #headerBytes bytes of this buffer (no view made of the usual one-chunk line). */
  #headerLine: Buffer | undefined;
  /** Decoded chunks, kept only when reading whole compressed bodies (identity bodies are their own decoding). */
  #decodedChunks: Buffer[] | undefined;
  #ended = false;
  #decoderEnded = false;
  /** Wire chunks written to the decoder whose decoded bytes are not all counted yet. */
  #pendingDecodes = 0;
  /** The body is ready to stream but waits (request paused) for the decoder to count what it was given. */
  #awaitingDecoder = false;
  #failure: TunnelError | undefined;
  readonly #decoder: zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | undefined;
  #listener: HeadListener | undefined;
  #stream: Transform | undefined;
  deadline = Number.POSITIVE_INFINITY;
  previousWatched: Watched | undefined;
  nextWatched: Watched | undefined;
  readonly #deadlines: Deadlines;
  readonly #onData = (chunk: Buffer): void => this.#onWire(chunk);
  readonly #onEnd = (): void => {
    this.#markEnded();
    if (this.#decoder) this.#decoder.end();
    this.#tryResolve();
  };
  readonly #onError = (): void => this.#fail(new TunnelError('request_aborted'));
  readonly #onClose = (): void => {
    if (!this.#ended) this.#fail(new TunnelError('request_aborted'));
  };

  constructor(
    private readonly req: Readable,
    encoding: ContentEncoding,
    private readonly limits: BodyLimits,
    private readonly whole: boolean,
    private readonly record: { bytesIn: number } | undefined,
  ) {
    this.#decoder = createDecoder(encoding);
    if (whole && this.#decoder) this.#decodedChunks = [];
    this.#deadlines = deadlinesFor(limits.requestTimeoutMs);
  }

  /** The slow-client guard: the body did not arrive within requestTimeoutMs. */
  expire(): void {
    this.#fail(new TunnelError('request_timeout'));
  }

  wireBytes(): number {
    return this.#wireBytes;
  }

  failure(): TunnelError | undefined {
    return this.#failure;
  }

  read(since: number, listener: HeadListener, closeReportsAbort: boolean): void {
    this.#listener = listener;
    const { req } = this;
    this.#deadlines.watch(this, since);
    req.on('data', this.#onData);
    req.on('end', this.#onEnd);
    // These stay while the body streams: its failures end the stream too.
    if (!closeReportsAbort) req.on('error', this.#onError);
    req.on('close', this.#onClose);
    this.#decoder?.on('data', (decoded: Buffer) => this.#onDecoded(decoded));
    this.#decoder?.once('end', () => {
      this.#decoderEnded = true;
      this.#tryResolve();
    });
    this.#decoder?.once('error', (error) => this.#fail(new TunnelError('invalid_body_encoding', { cause: error })));
  }

  #detach(): void {
    this.req.off('data', this.#onData);
    this.req.off('end', this.#onEnd);
  }

  #onWire(chunk: Buffer): void {
    if (this.#failure) return;
    this.#wireBytes += chunk.length;
    if (this.#wireBytes > this.limits.maxEnvelopeBytes) return this.#fail(new TunnelError('envelope_too_large'));
    if (this.#firstChunk === undefined) this.#firstChunk = chunk;
    else (this.#chunks ??= [this.#firstChunk]).push(chunk);
    this.#bufferedBytes += chunk.length;
    if (this.#decoder) {
      this.#pendingDecodes++;
      this.#decoder.write(chunk, () => this.#onChunkDecoded());
    } else this.#onDecoded(chunk);
    this.#tryResolve();
  }

  #onDecoded(decoded: Buffer): void {
    if (this.#failure) return;
    this.#decodedBytes += decoded.length;
    if (this.#decodedBytes > this.limits.maxDecodedBytes) return this.#fail(new TunnelError('envelope_too_large'));
    this.#decodedChunks?.push(decoded);
    if (this.#headerLine) return;
    const newline = decoded.indexOf(NEWLINE);
    const length = newline === -1 ? decoded.length : newline;
    this.#headerBytes += length;
    if (this.#headerBytes > this.limits.maxHeaderLineBytes) return this.#fail(new TunnelError('header_too_large'));
    if (newline === -1) (this.#headerParts ??= []).push(decoded);
    // The usual envelope: the whole line in the first chunk, read where it is.
    else if (this.#headerParts === undefined) this.#headerLine = decoded;
    else {
      this.#headerParts.push(decoded.subarray(0, newline));
      this.#headerLine = joined(this.#headerParts, this.#headerBytes);
    }
    if (this.#stream === undefined) this.#tryResolve();
  }

  #onChunkDecoded(): void {
    this.#pendingDecodes--;
    if (this.#pendingDecodes === 0 && this.#awaitingDecoder) {
      this.#awaitingDecoder = false;
      this.#tryResolve();
    }
  }

  #markEnded(): void {
    this.#ended = true;
    this.#deadlines.unwatch(this);
  }

  #fail(error: TunnelError): void {
    if (this.#failure) return;
    this.#failure = error;
    if (this.record) this.record.bytesIn = this.#wireBytes;
    this.#deadlines.unwatch(this);
    this.#detach();
    this.#decoder?.destroy();
    this.#stream?.destroy(error);
    const listener = this.#listener;
    if (listener) {
      this.#listener = undefined;
      listener.onHeadFailed(error);
    }
  }

  /** Resolves once the header is known and either the whole body is here or it is large enough to stream. */
  #tryResolve(): void {
    const listener = this.#listener;
    if (!listener || this.#failure) return;
    const decodedAll = this.#ended && (!this.#decoder || this.#decoderEnded);
    if (decodedAll && !this.#headerLine) {
      if (this.#decodedBytes === 0 || this.#headerParts === undefined) return this.#fail(new TunnelError('empty_body'));
      this.#headerLine = joined(this.#headerParts, this.#headerBytes);
    }
    if (!this.#headerLine) return;
    if (!decodedAll && (this.whole || this.#bufferedBytes < BUFFERED_BODY_BYTES)) return;
    if (!decodedAll && this.#pendingDecodes > 0) {
      // Streaming hands the buffered chunks on: not before the decoder has counted them (a deflate bomb).
      this.req.pause();
      this.#awaitingDecoder = true;
      return;
    }

    const header = parseHeader(this.#headerLine, this.#headerBytes);
    if (header === NOT_UTF8) return this.#fail(new TunnelError('invalid_envelope_header', { message: INVALID_UTF8 }));
    if (!header) return this.#fail(new TunnelError('invalid_envelope_header'));
    this.#listener = undefined;
    this.header = header;
    if (decodedAll) {
      // No listener comes off: an ended request emits no more data, and it goes when the request does.
      const body = this.#chunks ? Buffer.concat(this.#chunks, this.#bufferedBytes) : (this.#firstChunk ?? EMPTY_BODY);
      this.body = body;
      if (this.whole) this.decoded = this.#decodedChunks ? joined(this.#decodedChunks, this.#decodedBytes) : body;
      this.#decodedChunks = undefined;
      this.#firstChunk = this.#chunks = undefined;
      listener.onHead(this);
      return;
    }
    this.body = this.#startStreaming();
    // Not from inside the request's 'data' event that made the body stream: its consumer starts reading it.
    queueMicrotask(() => listener.onHead(this));
  }

  /** The rest of the body flows through a Transform that keeps counting and decoding. */
  #startStreaming(): Transform {
    this.#detach();
    const decoder = this.#decoder;
    const stream = new Transform({
      transform: (chunk: Buffer, _encoding, callback: TransformCallback) => {
        this.#wireBytes += chunk.length;
        if (this.#wireBytes > this.limits.maxEnvelopeBytes) return callback(this.#failWith(new TunnelError('envelope_too_large')));
        if (!decoder) return callback(null, chunk);
        decoder.write(chunk, () => callback(this.#failure ?? null, this.#failure ? undefined : chunk));
      },
      flush: (callback: TransformCallback) => {
        if (!decoder || this.#decoderEnded) return callback(this.#failure ?? null);
        let called = false;
        const done = () => {
          if (called) return;
          called = true;
          callback(this.#failure ?? null);
        };
        decoder.once('end', done);
        decoder.once('close', done);
        decoder.end();
      },
    });
    this.#stream = stream;
    if (this.#chunks) for (const chunk of this.#chunks) stream.push(chunk);
    else if (this.#firstChunk) stream.push(this.#firstChunk);
    this.#firstChunk = this.#chunks = undefined;
    this.req.once('end', () => this.#markEnded());
    this.req.pipe(stream);
    return stream;
  }

  #failWith(error: TunnelError): TunnelError {
    this.#fail(error);
    return this.#failure ?? error;
  }
}

/** One buffer of all `parts`; a body that arrived in one chunk (the usual small envelope) is not copied. */
function joined(parts: readonly Buffer[], length: number): Buffer {
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, length);
}

function createDecoder(encoding: ContentEncoding): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | undefined {
  switch (encoding) {
    case 'identity':
      return undefined;
    case 'gzip':
      return zlib.createGunzip();
    case 'deflate':
      return zlib.createInflate();
    case 'br':
      return zlib.createBrotliDecompress();
  }
}

const NOT_UTF8 = Symbol('not UTF-8');

/**
 * The JSON object in the first `length` bytes of `buffer`. Relay's parser refuses what is not UTF-8,
 * which decoding would quietly turn into U+FFFD: only a line whose text has one is checked byte by
 * byte (isUtf8, a call into C++ that costs about as much as the decoding; bench:instructions).
 */
function parseHeader(buffer: Buffer, length: number): Record<string, unknown> | undefined | typeof NOT_UTF8 {
  const text = buffer.toString('utf8', 0, length);
  if (text.includes('\uFFFD') && !isUtf8(buffer.subarray(0, length))) return NOT_UTF8;
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const gunzip = promisify(zlib.gunzip);
const inflate = promisify(zlib.inflate);
const brotliDecompress = promisify(zlib.brotliDecompress);

/**
 * The decoded bytes of a buffered body, for stages that must read past the header line (processing,
 * rate-limit categories). Rejects with envelope_too_large or invalid_body_encoding.
 */
export async function decodeBody(body: Buffer, encoding: ContentEncoding, maxDecodedBytes: number): Promise<Buffer> {
  if (encoding === 'identity') return body;
  const options = { maxOutputLength: maxDecodedBytes };
  try {
    if (encoding === 'gzip') return await gunzip(body, options);
    if (encoding === 'deflate') return await inflate(body, options);
    return await brotliDecompress(body, options);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new TunnelError('envelope_too_large', { cause: error });
    throw new TunnelError('invalid_body_encoding', { cause: error });
  }
}
