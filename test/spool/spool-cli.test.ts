// The spool as a user runs it: `sentry-tunnel serve` as a real child process, killed and restarted.
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { errorEnvelope } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { type CliRun, listeningUrl, runCli } from '../helpers/spawn-cli.js';
import { entryFiles, removeTempDirs, tempDir, waitFor } from '../helpers/spool.js';

const runs = new Set<CliRun>();
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const run of runs) if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
  runs.clear();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await removeTempDirs();
});

function cli(args: readonly string[]): CliRun {
  const run = runCli(args);
  runs.add(run);
  return run;
}

/** `serve --config <file>`, resolved once it listens. */
async function serve(configFile: string): Promise<{ run: CliRun; url: string }> {
  const run = cli(['serve', '--config', configFile]);
  return { run, url: listeningUrl(await run.waitForLine(/listening on/)) };
}

describe('spool across a crash (real child process)', () => {
  it('loses none of 500 envelopes when the tunnel is SIGKILLed halfway while Sentry is down', { timeout: 90_000 }, async () => {
    const fake = await FakeSentry.start();
    cleanups.push(() => fake.close());
    let up = false;
    const delivered: Buffer[] = [];
    fake.reply = (request) => {
      if (!up) return { reset: true };
      delivered.push(request.body);
      return {};
    };
    const dir = await tempDir();
    const configFile = join(await tempDir(), 'sentry-tunnel.config.json');
    await writeFile(
      configFile,
      JSON.stringify({
        server: { host: '127.0.0.1', port: 0 },
        projects: { web: { dsn: fake.dsn() } },
        spool: { dir: join(dir, 'spool'), retry: { initialMs: 50, maxMs: 200 } },
        log: { level: 'info', format: 'json' },
      }),
    );
    const bodies = Array.from({ length: 500 }, (_, i) => errorEnvelope(fake.dsn(), `crash test ${i}`));

    // Upstream down: send with 8 clients at once; SIGKILL once half are answered.
    const first = await serve(configFile);
    const answered = new Set<number>();
    let next = 0;
    let inFlight = 0;
    let inFlightAtKill = -1;
    const client = async () => {
      while (next < bodies.length && inFlightAtKill === -1) {
        const index = next++;
        inFlight++;
        try {
          const response = await fetch(first.url, { method: 'POST', body: bodies[index] });
          if (response.status === 200) answered.add(index);
          else throw new Error(`envelope ${index} answered ${response.status}`);
        } catch (error) {
          if (inFlightAtKill === -1) throw error;
        } finally {
          inFlight--;
        }
        if (answered.size >= 250 && inFlightAtKill === -1) {
          inFlightAtKill = inFlight;
          first.run.child.kill('SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, client));
    expect(await first.run.exited()).toBe(128 + 9);
    expect(inFlightAtKill).toBeGreaterThanOrEqual(0);

    // Restart: the rest (including those whose answer the kill swallowed) are sent again, still with Sentry down.
    const second = await serve(configFile);
    const resumed = JSON.parse(await second.run.waitForLine(/spool: resuming/)) as { envelopes: number };
    expect(resumed.envelopes).toBeGreaterThanOrEqual(250);
    for (let index = 0; index < bodies.length; index++) {
      if (answered.has(index)) continue;
      const response = await fetch(second.url, { method: 'POST', body: bodies[index] });
      expect(response.status).toBe(200);
      answered.add(index);
    }
    expect(answered.size).toBe(500);

    // Sentry comes back: everything arrives, byte-identical.
    up = true;
    await waitFor('the spool to drain', async () => (await entryFiles(join(dir, 'spool'))).length === 0, 60_000);
    const arrived = new Map<string, number>();
    for (const body of delivered) arrived.set(body.toString('base64'), (arrived.get(body.toString('base64')) ?? 0) + 1);
    for (const body of bodies) expect(arrived.has(body.toString('base64'))).toBe(true);
    const duplicates = delivered.length - bodies.length;
    expect(arrived.size).toBe(bodies.length);
    expect(duplicates).toBeGreaterThanOrEqual(0);
    expect(duplicates).toBeLessThanOrEqual(inFlightAtKill);
    expect((await readdir(join(dir, 'spool'))).filter((name) => name.startsWith('.tmp-'))).toEqual([]);

    second.run.child.kill('SIGTERM');
    expect(await second.run.exited()).toBe(0);
  });
});

describe('spool.dir that cannot be used', () => {
  it('serve exits 1 naming the problem; check-config warns but passes', async () => {
    const parent = await tempDir();
    const file = join(parent, 'not-a-directory');
    await writeFile(file, '');
    const configFile = join(parent, 'sentry-tunnel.config.json');
    await writeFile(configFile, JSON.stringify({ server: { port: 0 }, projects: { web: { dsn: 'https://abc@o1.ingest.sentry.io/2' } }, spool: { dir: join(file, 'spool') } }));

    const served = cli(['serve', '--config', configFile]);
    expect(await served.exited()).toBe(1);
    expect(served.stderr()).toContain(`spool.dir ${join(file, 'spool')} is not a writable directory`);

    const checked = cli(['check-config', '--config', configFile]);
    expect(await checked.exited()).toBe(0);
    expect(checked.stdout()).toContain(`spool.dir: ${join(file, 'spool')} cannot be used here`);
    expect(checked.stdout()).toContain('configuration is valid');
  });
});
