// The container image end to end: built from the Dockerfile with podman, run with a read-only root and host networking against a fake Sentry on 127.0.0.1.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { envelope, eventId } from '../helpers/envelopes.js';
import { FakeSentry } from '../helpers/fake-sentry.js';
import { type PodmanSetup, type RunningContainer, findPodman, podman, runContainer } from '../helpers/podman.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const SPOOL = '/var/lib/sentry-tunnel/spool';
const MiB = 1024 * 1024;

const found = findPodman();
const missing = typeof found === 'string' ? found : undefined;
if (missing) {
  if (process.env.CI) {
    it('podman and a Node.js base image are available (required when CI is set)', () => {
      throw new Error(`the container tests cannot run: ${missing}; .ci/run calls scripts/ci/deploy-tools.sh for both`);
    });
  } else {
    console.warn(`skipping the container tests: ${missing}`);
  }
}

interface ImageInspect {
  Size: number;
  Config: { User?: string; Env?: string[]; ExposedPorts?: Record<string, unknown>; Entrypoint?: string[]; Cmd?: string[]; StopSignal?: string };
}

describe.skipIf(missing !== undefined)('the container image', () => {
  const setup = found as PodmanSetup;
  const tag = 'localhost/sentry-tunnel:test';
  const run = `sentry-tunnel-test-${process.pid}`;
  const volume = `${run}-spool`;
  const containers: string[] = [];
  let imageId = '';
  let sentry: FakeSentry;

  beforeAll(async () => {
    sentry = await FakeSentry.start();
    const dir = await mkdtemp(join(tmpdir(), 'sentry-tunnel-image-'));
    const started = Date.now();
    // The build context is the checkout as `podman build .` sees it: .dockerignore leaves out
    // node_modules, dist and the rest, so the image builds from the sources alone. Nothing is pulled;
    // npm ci inside reaches the registry through the host's network, so podman sets up no bridge.
    const build = await podman(
      setup,
      ['build', '--pull=never', '--network', 'host', '--build-arg', `NODE_IMAGE=${setup.baseImage}`, '--iidfile', join(dir, 'iid'), '--tag', tag, REPO],
      600_000,
    );
    if (build.code !== 0) throw new Error(`podman build failed with ${build.code}:\n${build.stdout.slice(-3000)}\n${build.stderr.slice(-3000)}`);
    imageId = (await readFile(join(dir, 'iid'), 'utf8')).trim();
    await rm(dir, { recursive: true, force: true });
    console.info(`built ${tag} (${imageId.replace('sha256:', '').slice(0, 12)}) on ${setup.baseImage} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const created = await podman(setup, ['volume', 'create', volume]);
    if (created.code !== 0) throw new Error(`podman volume create failed:\n${created.stderr}`);
  }, 660_000);

  afterAll(async () => {
    for (const name of containers) await podman(setup, ['rm', '--force', '--time', '0', name]);
    await podman(setup, ['volume', 'rm', '--force', volume]);
    await sentry?.close();
  }, 60_000);

  /** The image as Kubernetes runs it: read-only root, no tmpfs, the spool on a volume; loopback only. */
  function start(name: string): RunningContainer {
    containers.push(name);
    return runContainer(setup, [
      '--rm',
      '--name', name,
      '--network', 'host',
      '--read-only', '--read-only-tmpfs=false',
      '--mount', `type=volume,source=${volume},destination=${SPOOL}`,
      '--env', 'SENTRY_TUNNEL_HOST=127.0.0.1',
      '--env', 'SENTRY_TUNNEL_PORT=0',
      '--env', `SENTRY_TUNNEL_DSNS=${sentry.dsn()}`,
      imageId,
    ]);
  }

  async function listening(container: RunningContainer): Promise<string> {
    const line = await container.waitForLine(/"msg":"sentry-tunnel listening on /);
    return new URL((JSON.parse(line) as { url: string }).url).origin;
  }

  async function stop(name: string, container: RunningContainer): Promise<number> {
    const stopped = await podman(setup, ['stop', '--time', '30', name], 40_000);
    expect(stopped.code, stopped.stderr).toBe(0);
    return container.exited();
  }

  function errorEvent(): { id: string; body: Buffer } {
    const id = eventId();
    const body = envelope({ event_id: id, dsn: sentry.dsn(), sent_at: new Date().toISOString() }, [
      { type: 'event', payload: { event_id: id, message: 'from the container test', level: 'error', platform: 'javascript' } },
    ]);
    return { id, body };
  }

  it('listens on 0.0.0.0:8080 as uid 1000 by default and holds only the built output and production dependencies', async () => {
    const [image] = JSON.parse((await podman(setup, ['image', 'inspect', imageId])).stdout) as ImageInspect[];
    const [base] = JSON.parse((await podman(setup, ['image', 'inspect', setup.baseImage])).stdout) as ImageInspect[];
    expect(image?.Config.User).toBe('1000:1000');
    expect(image?.Config.Env).toEqual(expect.arrayContaining(['SENTRY_TUNNEL_HOST=0.0.0.0', 'SENTRY_TUNNEL_PORT=8080', 'NODE_ENV=production']));
    expect(Object.keys(image?.Config.ExposedPorts ?? {})).toEqual(['8080/tcp']);
    expect(image?.Config.Entrypoint).toEqual(['node', '/app/bin/sentry-tunnel.js']);
    expect(image?.Config.Cmd).toEqual(['serve', '--config', '/etc/sentry-tunnel/config.json']);

    const added = (image?.Size ?? 0) - (base?.Size ?? 0);
    console.info(`image: ${(image!.Size / MiB).toFixed(0)} MiB, of which the tunnel adds ${(added / MiB).toFixed(1)} MiB to ${setup.baseImage}`);
    expect(added).toBeLessThan(64 * MiB);

    const listing = await podman(setup, [
      'run', '--rm', '--network', 'none', '--entrypoint', 'node', imageId, '-e',
      'const fs = require("node:fs"); console.log(JSON.stringify({ app: fs.readdirSync("/app").sort(), modules: fs.readdirSync("/app/node_modules") }))',
    ]);
    expect(listing.code, listing.stderr).toBe(0);
    const { app, modules } = JSON.parse(listing.stdout) as { app: string[]; modules: string[] };
    expect(app).toEqual(['bin', 'dist', 'node_modules', 'package.json', 'sentry-tunnel.schema.json']);
    expect(modules).toEqual(expect.arrayContaining(['pino', 'undici', 'zod', '@sentry']));
    for (const dev of ['typescript', 'esbuild', 'vitest', 'playwright-core', 'express', 'hono']) expect(modules).not.toContain(dev);
  }, 120_000);

  const spooled = { id: '', body: Buffer.alloc(0) };

  it('spools into its volume what Sentry could not take, logs JSON on stdout, and exits 0 on SIGTERM', async () => {
    sentry.reply = { status: 503 };
    const name = `${run}-first`;
    const container = start(name);
    const origin = await listening(container);

    Object.assign(spooled, errorEvent());
    const answer = await fetch(`${origin}/tunnel`, { method: 'POST', body: spooled.body });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ id: spooled.id });
    await sentry.waitForRequests(1, 10_000);

    expect(await stop(name, container)).toBe(0);
    const lines = container.jsonLines(); // throws on a line that is not JSON
    expect(lines.find((line) => line.msg === 'signal received')).toMatchObject({ signal: 'SIGTERM', pid: 1 });
    expect(lines.at(-1)).toMatchObject({ msg: 'stopped' });
  }, 120_000);

  it('delivers the spooled envelope from the volume after a restart, forwards, answers the probes, and runs node as PID 1 under uid 1000', async () => {
    expect(spooled.id, 'the previous test spooled an envelope').not.toBe('');
    sentry.reply = {};
    const before = sentry.requests.length;
    const name = `${run}-second`;
    const container = start(name);
    const origin = await listening(container);

    const redelivered = async () => {
      const requests = await sentry.waitForRequests(before + 1, 15_000);
      return requests.slice(before).find((request) => request.body.equals(spooled.body));
    };
    expect(await redelivered(), 'the spooled envelope, byte for byte').toBeDefined();

    const fresh = errorEvent();
    const answer = await fetch(`${origin}/tunnel`, { method: 'POST', body: fresh.body });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ id: fresh.id });
    const arrived = sentry.requests.slice(before).find((request) => request.body.equals(fresh.body));
    expect(arrived?.url).toBe(`/api/2/envelope/?sentry_version=7&sentry_key=abc123def456`);

    const health = await fetch(`${origin}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${origin}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready' });

    const status = await podman(setup, ['exec', name, 'cat', '/proc/1/status', '/proc/1/cmdline']);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
    expect(status.stdout).toContain('/app/bin/sentry-tunnel.js\0serve');

    expect(await stop(name, container)).toBe(0);
    expect(container.jsonLines().at(-1)).toMatchObject({ msg: 'stopped' });
  }, 120_000);
});
