// A loopback web server for browser tests: serves @sentry/browser, bundled from node_modules with
// esbuild in memory, and HTML pages that call Sentry.init with the tunnel.
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/** @sentry/browser as one script that sets `window.Sentry`, the way a CDN bundle would. */
export async function bundleSentryBrowser(): Promise<string> {
  const result = await build({
    stdin: { contents: "export * from '@sentry/browser';", resolveDir: fileURLToPath(new URL('.', import.meta.url)), loader: 'js' },
    bundle: true,
    format: 'iife',
    globalName: 'Sentry',
    platform: 'browser',
    target: 'chrome120',
    minify: true,
    write: false,
    logLevel: 'silent',
  });
  const [output] = result.outputFiles;
  if (!output) throw new Error('esbuild produced no bundle');
  return output.text;
}

export interface SentryPageOptions {
  /** Sentry.init options as JSON (dsn, tunnel, sample rates, …). */
  readonly init: Record<string, unknown>;
  /** Integration constructor calls, as JavaScript, e.g. `Sentry.browserTracingIntegration({ idleTimeout: 200 })`. */
  readonly integrations?: readonly string[];
  readonly body?: string;
}

/**
 * The page's script records what the SDK itself learnt about each event it sent (`window.sent`):
 * statusCode is undefined when the request failed in the browser (a CORS refusal, say).
 */
function pageHtml(options: SentryPageOptions): string {
  const integrations = (options.integrations ?? []).join(', ');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>sentry-tunnel test page</title>
<script src="/sentry.js"></script>
<script>
  window.sent = [];
  Sentry.init(Object.assign(${JSON.stringify(options.init)}, { integrations: (defaults) => defaults.concat([${integrations}]) }));
  Sentry.getClient().on('afterSendEvent', (event, response) => {
    window.sent.push({ eventId: event.event_id, type: event.type || 'event', statusCode: response.statusCode });
  });
  window.throwLater = (message) => setTimeout(() => { throw new Error(message); });
</script></head>
<body>${options.body ?? '<main><h1>Checkout</h1><button id="buy">Buy</button><ul id="list"></ul></main>'}</body></html>`;
}

export class PageServer {
  readonly #server: Server;
  readonly #pages = new Map<string, string>();
  #pageCount = 0;

  private constructor(bundle: string) {
    this.#server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (path === '/sentry.js') {
        res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' });
        res.end(bundle);
        return;
      }
      const page = this.#pages.get(path);
      res.writeHead(page === undefined ? 404 : 200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page ?? 'not found');
    });
  }

  static async start(): Promise<PageServer> {
    const server = new PageServer(await bundleSentryBrowser());
    await new Promise<void>((resolve) => server.#server.listen(0, '127.0.0.1', resolve));
    return server;
  }

  /** The origin pages are served from (a different port, so a different origin, than any tunnel). */
  get origin(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Serves a new page and returns its URL. */
  page(options: SentryPageOptions): string {
    const path = `/page-${++this.#pageCount}`;
    this.#pages.set(path, pageHtml(options));
    return `${this.origin}${path}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
