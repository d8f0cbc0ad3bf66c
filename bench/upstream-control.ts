// Starts the fake upstream in its own process and talks to its /__bench control endpoints.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './peers.js';
import { startProcess, waitForPort } from './processes.js';
import type { BenchEnvelope } from './envelopes.js';
import type { Expectation, UpstreamStats } from './upstream.js';

export type { UpstreamStats };

export class FakeUpstream {
  private constructor(readonly port: number) {}

  static async start(): Promise<FakeUpstream> {
    const port = await freePort();
    const child = startProcess(process.execPath, [join(fileURLToPath(new URL('.', import.meta.url)), 'upstream.js'), String(port)], {}, 'load');
    await waitForPort(port, child);
    return new FakeUpstream(port);
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async #call<T>(path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.origin}/__bench/${path}`, { method: 'POST', body: body === undefined ? '' : JSON.stringify(body) });
    if (!response.ok) throw new Error(`fake upstream /__bench/${path} answered ${response.status}`);
    return (await response.json()) as T;
  }

  /** From now on, a body counts as verified only if it is exactly this envelope. */
  expect(envelope: BenchEnvelope): Promise<void> {
    const expectation: Expectation = envelope.body.length <= 1024 * 1024 ? { body: envelope.body.toString('base64') } : { sha256: envelope.sha256 };
    return this.#call('expect', [expectation]);
  }

  reset(): Promise<void> {
    return this.#call('reset');
  }

  stats(): Promise<UpstreamStats> {
    return this.#call('stats');
  }
}
