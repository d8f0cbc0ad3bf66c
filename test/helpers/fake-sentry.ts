// A fake Sentry ingest on a real loopback socket: records every request's raw bytes and headers,
// and answers however a test tells it to (status, headers, delay, reset, redirect).
import { type IncomingHttpHeaders, type Server, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

export interface FakeReply {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Destroy the connection instead of answering. */
  reset?: boolean;
}

export type ReplyPlan = FakeReply | ((request: RecordedRequest) => FakeReply);

export class FakeSentry {
  readonly requests: RecordedRequest[] = [];
  connections = 0;
  reply: ReplyPlan = {};
  /** Cut the connection once this many body bytes of a request arrived (Sentry failing mid-upload). */
  cutAfterBytes: number | undefined;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  host = '127.0.0.1';

  private constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      let received = 0;
      req.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        received += chunk.length;
        if (this.cutAfterBytes !== undefined && received >= this.cutAfterBytes) req.socket.destroy();
      });
      req.on('error', () => {});
      req.on('end', () => {
        const request: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
        this.requests.push(request);
        const plan = typeof this.reply === 'function' ? this.reply(request) : this.reply;
        const answer = () => {
          if (plan.reset) return req.socket.destroy();
          const eventId = eventIdOf(request.body);
          res.writeHead(plan.status ?? 200, { 'content-type': 'application/json', ...plan.headers });
          res.end(plan.body ?? JSON.stringify({ id: eventId }));
        };
        if (plan.delayMs) setTimeout(answer, plan.delayMs);
        else answer();
      });
    });
    this.#server.on('connection', (socket: Socket) => {
      this.connections++;
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  /** `host` is a loopback address; another one than 127.0.0.1 makes a Sentry host of its own. */
  static async start(host = '127.0.0.1'): Promise<FakeSentry> {
    const fake = new FakeSentry();
    fake.host = host;
    await new Promise<void>((resolve) => fake.#server.listen(0, host, resolve));
    return fake;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** A DSN whose ingest is this fake. */
  dsn(projectId = '2', publicKey = 'abc123def456'): string {
    return `http://${publicKey}@${this.host}:${this.port}/${projectId}`;
  }

  /** Resolves once `count` requests have arrived (bounded by `timeoutMs`). */
  async waitForRequests(count: number, timeoutMs = 5_000): Promise<RecordedRequest[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.requests.length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} upstream requests, saw ${this.requests.length}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return this.requests;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function eventIdOf(body: Buffer): string {
  try {
    const header = JSON.parse(body.subarray(0, Math.max(0, body.indexOf(10)) || body.length).toString()) as { event_id?: string };
    return header.event_id ?? '00000000000000000000000000000000';
  } catch {
    return '00000000000000000000000000000000';
  }
}
