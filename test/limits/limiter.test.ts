// The window budgets in one process, and the upstream concurrency gate.
import { describe, expect, it } from 'vitest';
import { TunnelError } from '../../src/errors.js';
import { UpstreamGate, WindowLimiter } from '../../src/limits/limiter.js';

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
  it('runs at most maxConcurrent, queues maxQueued in order, refuses the next with 503 overloaded', async () => {
    const gate = new UpstreamGate(2, 2);
    const order: number[] = [];
    const gates = Array.from({ length: 4 }, () => deferred());
    const runs = gates.map((d, index) =>
      gate.run(async () => {
        order.push(index);
        await d.promise;
        return index;
      }),
    );
    await Promise.resolve();
    expect(gate.running).toBe(2);
    expect(gate.queued).toBe(2);
    expect(order).toEqual([0, 1]);

    const refused = await gate.run(() => Promise.resolve(99)).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(TunnelError);
    expect((refused as TunnelError).code).toBe('overloaded');
    expect((refused as TunnelError).status).toBe(503);
    expect(Number((refused as TunnelError).headers?.['retry-after'])).toBeGreaterThanOrEqual(1);

    gates[1]?.resolve();
    await runs[1];
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual([0, 1, 2]);
    expect(gate.running).toBe(2);
    for (const d of gates) d.resolve();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3]);
    expect(gate.running).toBe(0);
    expect(gate.queued).toBe(0);
  });

  it('frees the slot when a task fails', async () => {
    const gate = new UpstreamGate(1, 0);
    await expect(gate.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await gate.run(() => Promise.resolve('ok'))).toBe('ok');
    expect(gate.running).toBe(0);
  });
});
