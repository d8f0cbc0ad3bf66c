// What `import 'sentry-tunnel'` gives on an edge runtime (Vercel/Next.js edge, Cloudflare workerd, a
// browser bundle): a sentence instead of a cryptic missing-module stack.
throw new Error(
  'sentry-tunnel needs Node.js ≥ 20.19 (node:http, node:zlib, undici) and cannot run on an edge runtime or in a browser: ' +
    "serve the tunnel route on the Node.js runtime (Next.js: export const runtime = 'nodejs'), or run `npx sentry-tunnel serve` beside the app.",
);

export {};
