// The envelopes the bench sends, shaped like what @sentry/browser posts
// (https://develop.sentry.dev/sdk/data-model/envelopes/): a ~2 KB error event, a ~20 KB transaction,
// and 5 MiB / 50 MiB envelopes carrying a binary attachment item.
import { createHash, randomBytes } from 'node:crypto';

export interface BenchEnvelope {
  readonly name: string;
  readonly body: Buffer;
  readonly sha256: string;
}

/** Request headers a browser's fetch transport sends with an envelope. */
export const BROWSER_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/plain;charset=UTF-8',
  origin: 'https://app.example.com',
  'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/138.0.0.0 Safari/537.36',
  accept: '*/*',
  'accept-language': 'en-US,en;q=0.9',
  'sec-ch-ua': '"Chromium";v="138", "Not)A;Brand";v="24"',
  'sec-ch-ua-platform': '"Linux"',
};

const SDK = { name: 'sentry.javascript.browser', version: '10.5.0' };
const id = () => randomBytes(16).toString('hex');
const spanId = () => randomBytes(8).toString('hex');

function build(header: object, items: readonly { header: object; payload: Buffer }[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`${JSON.stringify(header)}\n`)];
  for (const item of items) parts.push(Buffer.from(`${JSON.stringify(item.header)}\n`), item.payload, Buffer.from('\n'));
  return Buffer.concat(parts);
}

function named(name: string, body: Buffer): BenchEnvelope {
  return { name, body, sha256: createHash('sha256').update(body).digest('hex') };
}

function jsonItem(type: string, payload: object) {
  return { header: { type }, payload: Buffer.from(JSON.stringify(payload)) };
}

function frame(index: number) {
  return {
    filename: `https://app.example.com/assets/index-${(4096 + index).toString(16)}.js`,
    function: ['handleClick', 'dispatch', 'commitRoot', 'invokeGuarded', 'runTask'][index % 5],
    in_app: index < 3,
    lineno: 1 + index * 37,
    colno: 12 + index,
  };
}

function errorEvent(eventId: string) {
  return {
    event_id: eventId,
    timestamp: Date.now() / 1000,
    platform: 'javascript',
    level: 'error',
    environment: 'production',
    release: 'web@1.42.0',
    exception: {
      values: [{ type: 'TypeError', value: "Cannot read properties of undefined (reading 'id')", stacktrace: { frames: Array.from({ length: 6 }, (_, i) => frame(i)) }, mechanism: { type: 'onerror', handled: false } }],
    },
    breadcrumbs: Array.from({ length: 4 }, (_, i) => ({ timestamp: Date.now() / 1000 - i, category: 'ui.click', message: `button#save-${i}` })),
    request: { url: 'https://app.example.com/settings/profile', headers: { 'User-Agent': BROWSER_HEADERS['user-agent'] } },
    contexts: { browser: { name: 'Chrome', version: '138.0.0' }, os: { name: 'Linux' }, trace: { trace_id: id(), span_id: spanId() } },
    user: { ip_address: '{{auto}}' },
    sdk: { ...SDK, integrations: ['InboundFilters', 'FunctionToString', 'BrowserApiErrors', 'Breadcrumbs', 'GlobalHandlers', 'LinkedErrors', 'Dedupe', 'HttpContext'] },
  };
}

/** ~2 KB: one error event, as a browser SDK sends on an uncaught exception. */
export function errorEnvelope(dsn: string): BenchEnvelope {
  const eventId = id();
  return named('2 KB error', build({ event_id: eventId, sent_at: new Date().toISOString(), sdk: SDK, dsn }, [jsonItem('event', errorEvent(eventId))]));
}

/** ~20 KB: a page-load transaction with resource and interaction spans. */
export function transactionEnvelope(dsn: string): BenchEnvelope {
  const eventId = id();
  const traceId = id();
  const start = Date.now() / 1000 - 3;
  const spans = Array.from({ length: 56 }, (_, i) => ({
    span_id: spanId(),
    parent_span_id: spanId(),
    trace_id: traceId,
    op: i % 3 === 0 ? 'resource.script' : i % 3 === 1 ? 'http.client' : 'ui.long-task',
    description: `https://app.example.com/assets/chunk-${i}.${(i * 7919).toString(16)}.js`,
    start_timestamp: start + i * 0.01,
    timestamp: start + i * 0.01 + 0.05,
    data: { 'http.response_content_length': 1024 * i, 'sentry.origin': 'auto.resource.browser.metrics' },
    origin: 'auto.resource.browser.metrics',
  }));
  const transaction = {
    event_id: eventId,
    type: 'transaction',
    transaction: '/settings/:section',
    start_timestamp: start,
    timestamp: start + 2.4,
    platform: 'javascript',
    environment: 'production',
    release: 'web@1.42.0',
    contexts: { trace: { trace_id: traceId, span_id: spanId(), op: 'pageload' } },
    measurements: { fcp: { value: 612, unit: 'millisecond' }, lcp: { value: 1210, unit: 'millisecond' }, cls: { value: 0.02, unit: '' } },
    spans,
    sdk: SDK,
  };
  const trace = { trace_id: traceId, environment: 'production', release: 'web@1.42.0', public_key: new URL(dsn).username, sample_rate: '1', sampled: 'true' };
  return named('20 KB transaction', build({ event_id: eventId, sent_at: new Date().toISOString(), sdk: SDK, dsn, trace }, [jsonItem('transaction', transaction)]));
}

/** An error event plus a binary attachment item sized so the envelope is `totalBytes` long. */
export function attachmentEnvelope(dsn: string, name: string, totalBytes: number): BenchEnvelope {
  const eventId = id();
  const header = { event_id: eventId, sent_at: new Date().toISOString(), sdk: SDK, dsn };
  const event = jsonItem('event', errorEvent(eventId));
  const skeleton = build(header, [event, { header: { type: 'attachment', length: 0, filename: 'heap.bin', content_type: 'application/octet-stream' }, payload: Buffer.alloc(0) }]);
  let size = totalBytes - skeleton.length;
  size -= String(size).length - 1; // the length header grows with the number
  const payload = randomBytes(size);
  const attachment = { header: { type: 'attachment', length: payload.length, filename: 'heap.bin', content_type: 'application/octet-stream' }, payload };
  return named(name, build(header, [event, attachment]));
}
