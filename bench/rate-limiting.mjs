// Rate-limiting cost: what the per-client budget adds to a request (one WindowLimiter.take, in
// process), and why the upstream gate is not a Bottleneck limiter: how long 2000 concurrent 5 ms
// "requests to Sentry" take through UpstreamGate(100, 1000) and through Bottleneck with the same
// maxConcurrent/highWater (ideal: 2000 / 100 × 5 ms = 100 ms). Runs the built code: npm run build first.
import Bottleneck from 'bottleneck';
import { UpstreamGate, WindowLimiter } from '../dist/limiter.js';

const JOBS = Number(process.env.BENCH_JOBS ?? 2_000);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function timed(label, run) {
  const started = performance.now();
  await run();
  const ms = performance.now() - started;
  console.log(`${label}: ${ms.toFixed(0)} ms`);
  return ms;
}

const limiter = new WindowLimiter({ id: 'bench', max: 1e9, windowMs: 3_600_000 });
let started = performance.now();
for (let i = 0; i < 500; i++) await limiter.take('203.0.113.7');
console.log(`WindowLimiter.take, one after another: ${((performance.now() - started) / 500).toFixed(2)} ms each (Bottleneck waits one setTimeout(0) turn)`);
started = performance.now();
await Promise.all(Array.from({ length: JOBS }, (_, i) => limiter.take(`198.51.100.${i % 250}`)));
console.log(`WindowLimiter.take, ${JOBS} at once: ${(performance.now() - started).toFixed(0)} ms in all`);
limiter.close();

const gate = new UpstreamGate(100, 1_000);
await timed(`UpstreamGate, ${JOBS} jobs of 5 ms (100 at once)`, () =>
  Promise.all(Array.from({ length: JOBS }, () => gate.run(() => sleep(5)).catch(() => 'overloaded'))),
);
const bottleneck = new Bottleneck({ maxConcurrent: 100, highWater: 1_000, strategy: Bottleneck.strategy.OVERFLOW });
await timed(`Bottleneck, ${JOBS} jobs of 5 ms (100 at once)`, () =>
  Promise.all(Array.from({ length: JOBS }, () => bottleneck.schedule(() => sleep(5)).catch(() => 'dropped'))),
);
