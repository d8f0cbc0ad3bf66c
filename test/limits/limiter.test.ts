// The window budgets in one process, and the upstream concurrency gate.
import { describe, expect, it } from 'vitest';
import { TunnelError } from '../../src/errors.js';
import { type GateEntry, UpstreamGate, WindowLimiter } from '../../src/limits/limiter.js';

describe('WindowLimiter (in-process)', () => {
  it('admits exactly max per key under concurrent takes, and keys do not share', async () => {
    const limiter = new WindowLimiter({ id: 'test', max: 10, windowMs: 3_600_000 });
    const results = await Promise.all(Array.from({ length: 25 }, () => limiter.take('203.0.113.7')));
    expect(results.filter((r) => r.allowed)).toHaveLength(10);
    expect((await limiter.take('198.51.100.1')).allowed).toBe(true);
    for (const result of results) {
      expect(result.retryAfterMs).toBeGreaterThan(0);
      expect(result.retryAfterMs).toBeLessThanOrEqual(3_600_000);
    }
    limiter.close();
  });

  it('answers a take in this process at once, without a promise or a timer', () => {
    const limiter = new WindowLimiter({ id: 'test', max: 10, windowMs: 3_600_000 });
    const admission = limiter.take('a');
    expect(admission).not.toBeInstanceOf(Promise);
    expect(admission).toMatchObject({ allowed: true });
    limiter.close();
  });

  it('past maxKeys, new keys share one budget while known keys keep theirs; onOverflow once per window', async () => {
    let overflows = 0;
    const limiter = new WindowLimiter({ id: 'test', max: 2, windowMs: 3_600_000, maxKeys: 3, onOverflow: () => overflows++ });
    const allowed = async (key: string) => (await limiter.take(key)).allowed;
    expect([await allowed('a'), await allowed('b'), await allowed('c')]).toEqual([true, true, true]);
    // d, e and f are past the cap: together they have the budget one key has.
    expect([await allowed('d'), await allowed('e'), await allowed('f')]).toEqual([true, true, false]);
    expect(overflows).toBe(1);
    expect([await allowed('a'), await allowed('a')]).toEqual([true, false]);
    limiter.close();
  });

  it('gives a fresh budget when the clock-aligned window ends', async () => {
    const limiter = new WindowLimiter({ id: 'test', max: 1, windowMs: 1_000 });
    // Start right after a window boundary so both takes land in the same window.
    await new Promise((resolve) => setTimeout(resolve, 1_000 - (Date.now() % 1_000) + 5));
    expect((await limiter.take('a')).allowed).toBe(true);
    const refused = await limiter.take('a');
    expect(refused.allowed).toBe(false);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(1_000);
    await new Promise((resolve) => setTimeout(resolve, refused.retryAfterMs + 5));
    expect((await limiter.take('a')).allowed).toBe(true);
    limiter.close();
  });
});

function deferred() {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe('UpstreamGate', () => {
  /** A call that records when it started and with which stamp. */
  function call(order: number[], index: number): GateEntry & { stamp: number } {
    const entry = {
      stamp: Number.NaN,
      start(stamp: number) {
        order.push(index);
        entry.stamp = stamp;
      },
    };
    return entry;
  }

  it('runs at most maxConcurrent, queues maxQueued in order, refuses the next with 503 overloaded', async () => {
    const gate = new UpstreamGate(2, 2);
    const order: number[] = [];
    const calls = [0, 1, 2, 3].map((index) => call(order, index));
    for (const entry of calls) expect(gate.enter(entry)).toBeUndefined();
    expect(gate.running).toBe(2);
    expect(gate.queued).toBe(2);
    expect(order).toEqual([0, 1]);

    const refused = gate.enter(call(order, 99));
    expect(refused).toBeInstanceOf(TunnelError);
    expect(refused?.code).toBe('overloaded');
    expect(refused?.status).toBe(503);
    expect(Number(refused?.headers?.['retry-after'])).toBeGreaterThanOrEqual(1);

    // The slot is handed to the first waiting call, in a microtask.
    gate.leave((calls[1] as { stamp: number }).stamp);
    expect(order).toEqual([0, 1]);
    await Promise.resolve();
    expect(order).toEqual([0, 1, 2]);
    expect(gate.running).toBe(2);
    expect(gate.queued).toBe(1);
    for (const index of [0, 2]) gate.leave((calls[index] as { stamp: number }).stamp);
    await Promise.resolve();
    expect(order).toEqual([0, 1, 2, 3]);
    expect(gate.running).toBe(1);
    gate.leave((calls[3] as { stamp: number }).stamp);
    expect(gate.running).toBe(0);
    expect(gate.queued).toBe(0);
  });

  it('times one call in eight: the others start with the stamp -1', () => {
    const gate = new UpstreamGate(100, 0);
    const order: number[] = [];
    const calls = Array.from({ length: 16 }, (_, index) => call(order, index));
    for (const entry of calls) gate.enter(entry);
    expect(calls.map((entry) => entry.stamp >= 0)).toEqual(Array.from({ length: 16 }, (_, index) => index % 8 === 0));
  });
});
