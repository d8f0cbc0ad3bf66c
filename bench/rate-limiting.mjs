// Rate-limiting cost: what the per-client budget adds to a request (one WindowLimiter.take, in
// process) against the Bottleneck reservoir per client it replaced, and why the upstream gate is not a
// Bottleneck limiter: how long 2000 concurrent 5 ms "requests to Sentry" take through
// UpstreamGate(100, 1000) and through Bottleneck with the same maxConcurrent/highWater (ideal:
// 2000 / 100 × 5 ms = 100 ms). Runs the built code: npm run build first.
import Bottleneck from 'bottleneck';
import { UpstreamGate, WindowLimiter } from '../dist/limits/limiter.js';

const JOBS = Number(process.env.BENCH_JOBS ?? 2_000);
const CLIENTS = 5_000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function timed(label, run) {
  const started = performance.now();
  await run();
  const ms = performance.now() - started;
  console.log(`${label}: ${ms.toFixed(0)} ms`);
  return ms;
}

/** Heap bytes per client after one take each by CLIENTS distinct clients (needs --expose-gc for precision). */
async function bytesPerClient(take) {
  globalThis.gc?.();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < CLIENTS; i++) await take(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  globalThis.gc?.();
  return Math.round((process.memoryUsage().heapUsed - before) / CLIENTS);
}

const limiter = new WindowLimiter({ id: 'bench', max: 1e9, windowMs: 3_600_000 });
let started = performance.now();
for (let i = 0; i < 500; i++) await limiter.take('203.0.113.7');
console.log(`WindowLimiter.take, one after another: ${(((performance.now() - started) / 500) * 1000).toFixed(1)} µs each`);
started = performance.now();
await Promise.all(Array.from({ length: JOBS }, (_, i) => limiter.take(`198.51.100.${i % 250}`)));
console.log(`WindowLimiter.take, ${JOBS} at once: ${(performance.now() - started).toFixed(0)} ms in all`);
limiter.close();
const counted = new WindowLimiter({ id: 'bench', max: 300, windowMs: 3_600_000 });
console.log(`WindowLimiter, ${CLIENTS} clients: ${await bytesPerClient((key) => counted.take(key))} bytes of heap each`);
counted.close();

// What WindowLimiter did in process before: a Bottleneck reservoir per client and window.
const reservoirs = new Map();
const reservoirTake = (key) => {
  let reservoir = reservoirs.get(key);
  if (!reservoir) reservoirs.set(key, (reservoir = new Bottleneck({ reservoir: 300 })));
  return reservoir.incrementReservoir(-1);
};
started = performance.now();
for (let i = 0; i < 500; i++) await reservoirTake('203.0.113.7');
console.log(`Bottleneck reservoir per client, one after another: ${(((performance.now() - started) / 500) * 1000).toFixed(1)} µs each (one setTimeout(0) turn)`);
console.log(`Bottleneck reservoir per client, ${CLIENTS} clients: ${await bytesPerClient(reservoirTake)} bytes of heap each`);
for (const reservoir of reservoirs.values()) void reservoir.disconnect(false);

const gate = new UpstreamGate(100, 1_000);
/** One job through the gate as the tunnel's calls go: started in a slot, the slot given back when it ends. */
const gated = (job) =>
  new Promise((resolve) => {
    const refused = gate.enter({ start: (stamp) => void job().then(() => (gate.leave(stamp), resolve('done'))) });
    if (refused) resolve('overloaded');
  });
await timed(`UpstreamGate, ${JOBS} jobs of 5 ms (100 at once)`, () => Promise.all(Array.from({ length: JOBS }, () => gated(() => sleep(5)))));
const bottleneck = new Bottleneck({ maxConcurrent: 100, highWater: 1_000, strategy: Bottleneck.strategy.OVERFLOW });
await timed(`Bottleneck, ${JOBS} jobs of 5 ms (100 at once)`, () =>
  Promise.all(Array.from({ length: JOBS }, () => bottleneck.schedule(() => sleep(5)).catch(() => 'dropped'))),
);
