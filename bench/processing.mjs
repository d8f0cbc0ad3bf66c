// Processing cost: a ~20 KB browser transaction envelope through one filter and one enrichment, in CPU
// microseconds per envelope (process.cpuUsage over many iterations, so a loaded machine inflates it
// less than wall time would). Target (issue 5): at most 50 µs. Runs the built code: npm run build first.
// Also measures what re-compressing a changed envelope would cost, the reason changed envelopes go
// out uncompressed.
import { gzipSync } from 'node:zlib';
import { createEventEnvelope, makeDsn, serializeEnvelope } from '@sentry/core';
import { parseEnvelope } from '../dist/core/envelope.js';
import { validateConfig } from '../dist/config/load.js';
import { Processor } from '../dist/processing/processing.js';

const DSN = 'https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/2';
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 5_000);
const ROUNDS = 9;

function transactionEnvelope(targetBytes) {
  const traceId = '0123456789abcdef0123456789abcdef';
  const spans = [];
  let bytes;
  do {
    const i = spans.length;
    spans.push({
      span_id: (0x1000_0000_0000_0000n + BigInt(i)).toString(16),
      parent_span_id: 'abcdef0123456789',
      trace_id: traceId,
      op: i % 3 === 0 ? 'resource.script' : 'http.client',
      description: `GET https://api.example.com/v1/items/${i}?include=prices`,
      start_timestamp: 1_700_000_000.123 + i / 10,
      timestamp: 1_700_000_000.456 + i / 10,
      status: 'ok',
      origin: 'auto.http.browser',
      data: { 'http.method': 'GET', url: `https://api.example.com/v1/items/${i}`, 'http.response.status_code': 200 },
    });
    const event = {
      type: 'transaction',
      event_id: 'fedcba9876543210fedcba9876543210',
      transaction: '/checkout',
      platform: 'javascript',
      environment: 'production',
      release: 'web@1.4.2',
      start_timestamp: 1_700_000_000,
      timestamp: 1_700_000_100,
      contexts: { trace: { trace_id: traceId, span_id: 'abcdef0123456789', op: 'pageload' } },
      spans,
      measurements: { lcp: { value: 1234.5, unit: 'millisecond' }, fcp: { value: 800.25, unit: 'millisecond' } },
      tags: { 'ui.route': '/checkout' },
      request: { url: 'https://app.example.com/checkout', headers: { 'User-Agent': 'Mozilla/5.0 (Macintosh) Safari/605.1.15' } },
      user: { ip_address: '{{auto}}' },
    };
    const serialized = serializeEnvelope(createEventEnvelope(event, makeDsn(DSN), undefined, 'https://app.example.com/tunnel'));
    bytes = Buffer.from(serialized);
  } while (bytes.length < targetBytes);
  return bytes;
}

/** CPU µs per call: the median and best of ROUNDS rounds of ITERATIONS calls, after a warm-up. */
function measure(fn) {
  for (let i = 0; i < 5_000; i++) fn();
  const perCall = [];
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.cpuUsage();
    for (let i = 0; i < ITERATIONS; i++) fn();
    const used = process.cpuUsage(start);
    perCall.push((used.user + used.system) / ITERATIONS);
  }
  if (process.env.BENCH_VERBOSE) console.log(perCall.map((value) => value.toFixed(1)).join(" "));
  perCall.sort((a, b) => a - b);
  return { median: perCall[Math.floor(ROUNDS / 2)], best: perCall[0] };
}

const projects = { web: { dsn: DSN } };
const processor = Processor.create(
  validateConfig({ projects, filters: [{ dropEvents: { environment: ['development'] } }], enrich: { tags: { server_region: 'eu-west-1' } } }),
);
if (!processor) throw new Error('expected a processor');
if (Processor.create(validateConfig({ projects })) !== undefined) throw new Error('no rules must mean no processor (streaming path)');

const envelope = transactionEnvelope(20 * 1024);
const client = { ip: () => '203.0.113.7', userAgent: 'Mozilla/5.0' };
const result = processor.process(envelope, client);
if (result.kind !== 'changed') throw new Error(`expected the transaction to be enriched, got ${result.kind}`);

const rows = [
  ['parse only (envelope framing)', measure(() => parseEnvelope(envelope))],
  ['1 filter + 1 enrichment (target ≤ 50 µs)', measure(() => processor.process(envelope, client))],
  ['  re-compress the result: gzip level 1', measure(() => gzipSync(result.body, { level: 1 }))],
  ['  re-compress the result: gzip default', measure(() => gzipSync(result.body))],
];

console.log(`envelope: ${envelope.length} bytes (transaction), ${ITERATIONS} iterations × ${ROUNDS} rounds, Node ${process.version}`);
for (const [name, { median, best }] of rows) {
  console.log(`${name.padEnd(44)} median ${median.toFixed(1).padStart(7)} µs   best ${best.toFixed(1).padStart(7)} µs`);
}
console.log('no rules configured: no processor, requests keep the header-line streaming path (no extra work)');
