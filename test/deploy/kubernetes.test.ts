// The Kubernetes manifests agree with the tunnel: probes, ports, paths, user and grace period checked against the configuration they load and the Dockerfile.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { type Config, configSchema } from '../../src/config/schema.js';
import { HEALTH_PATHS } from '../../src/daemon/health.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const DIR = join(REPO, 'deploy/kubernetes');

type Json = Record<string, any>; // parsed manifests: their shape is what the tests check

async function documents(file: string): Promise<Json[]> {
  const parsed = parseAllDocuments(await readFile(join(DIR, file), 'utf8'));
  return (Array.isArray(parsed) ? parsed : [parsed]).map((document) => {
    expect(document.errors, `${file}: ${document.errors.join('; ')}`).toEqual([]);
    return document.toJS() as Json;
  });
}

/** `ENV`/`USER` of the Dockerfile's runtime stage, the image the Deployment runs. */
async function dockerfile(): Promise<{ env: Record<string, string>; user: string }> {
  const text = await readFile(join(REPO, 'Dockerfile'), 'utf8');
  const runtime = text.slice(text.lastIndexOf('\nFROM '));
  const env = Object.fromEntries([...runtime.matchAll(/\b(SENTRY_TUNNEL_\w+)=(\S+)/g)].map((match) => [match[1], match[2]]));
  return { env, user: /^USER (\S+)$/m.exec(runtime)?.[1] ?? '' };
}

describe('deploy/kubernetes', () => {
  const byKind: Record<string, Json> = {};
  let image: Awaited<ReturnType<typeof dockerfile>>;
  let config: Config;
  let pod: Json;
  let container: Json;
  let tmp: string;

  beforeAll(async () => {
    const [kustomization] = await documents('kustomization.yaml');
    for (const file of kustomization?.resources as string[]) {
      for (const document of await documents(file)) byKind[document.kind as string] = document;
    }
    image = await dockerfile();
    pod = byKind.Deployment?.spec.template.spec;
    container = pod.containers[0];

    // The configuration exactly as the container loads it: the ConfigMap's file, the image's
    // environment and the DSNs from the Secret.
    tmp = await mkdtemp(join(tmpdir(), 'sentry-tunnel-k8s-'));
    const file = join(tmp, 'config.json');
    await writeFile(file, byKind.ConfigMap?.data['config.json']);
    const dsns = container.env.find((variable: Json) => variable.name === 'SENTRY_TUNNEL_DSNS').valueFrom.secretKeyRef;
    expect(dsns.name).toBe(byKind.Secret?.metadata.name);
    ({ config } = await loadConfig({ config: file }, { ...image.env, SENTRY_TUNNEL_DSNS: byKind.Secret?.stringData[dsns.key] }));
  });

  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('holds a ConfigMap, a Secret, a Deployment and a Service, all named sentry-tunnel', () => {
    expect(Object.keys(byKind).sort()).toEqual(['ConfigMap', 'Deployment', 'Secret', 'Service']);
    for (const resource of Object.values(byKind)) expect(resource.metadata.name).toBe('sentry-tunnel');
  });

  it('listens where the image and the loaded configuration say, and the Service reaches it', () => {
    const defaults = configSchema.parse({ projects: { web: { dsn: 'https://abc@o1.ingest.sentry.io/2' } } });
    const ports = Object.fromEntries(container.ports.map((port: Json) => [port.name, port.containerPort]));
    expect(config.server.host).toBe('0.0.0.0');
    expect(ports.http).toBe(config.server.port);
    expect(ports.http).toBe(defaults.server.port);
    expect(ports.metrics).toBe(config.metrics.port);
    expect(config.server.path).toBe(defaults.server.path);

    const service = byKind.Service as Json;
    expect(service.spec.ports.map((port: Json) => port.targetPort)).toEqual(['http']);
    expect(byKind.Deployment?.spec.selector.matchLabels).toEqual(service.spec.selector);
    expect(byKind.Deployment?.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    expect(byKind.Deployment?.spec.template.metadata.annotations['prometheus.io/port']).toBe(String(config.metrics.port));
    expect(byKind.Deployment?.spec.template.metadata.annotations['prometheus.io/path']).toBe(config.metrics.path);
  });

  it('probes readiness on /readyz and liveness on /healthz, on the tunnel port', () => {
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect([...HEALTH_PATHS].sort()).toEqual(['/healthz', '/readyz']);
  });

  it('mounts the configuration where the command reads it and the spool where the configuration puts it', () => {
    const mounts = Object.fromEntries(container.volumeMounts.map((mount: Json) => [mount.name, mount]));
    const volumes = Object.fromEntries(pod.volumes.map((volume: Json) => [volume.name, volume]));
    const configPath = container.args[container.args.indexOf('--config') + 1];
    expect(configPath).toBe(`${mounts.config.mountPath}/config.json`);
    expect(mounts.config.readOnly).toBe(true);
    expect(volumes.config.configMap.name).toBe(byKind.ConfigMap?.metadata.name);

    expect(config.spool.dir).toBe(mounts.spool.mountPath);
    expect(volumes.spool.emptyDir).toBeDefined();
    expect(mebibytes(volumes.spool.emptyDir.sizeLimit) * 1024 * 1024).toBeGreaterThan(config.spool.maxBytes);
  });

  it('runs as the image\'s non-root user on a read-only root, without privileges', async () => {
    const [uid, gid] = image.user.split(':').map(Number);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: uid, runAsGroup: gid });
    expect(uid).not.toBe(0);
    expect(container.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
  });

  it('gives the pod longer to stop than the drain delay and the shutdown timeout together', () => {
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(config.server.drainDelayMs + config.server.shutdownTimeoutMs);
  });

  it('requests resources for an idle tunnel (~105 MiB RSS in bench/README.md) and limits memory only', () => {
    const { requests, limits } = container.resources;
    expect(mebibytes(requests.memory)).toBeGreaterThanOrEqual(128);
    expect(mebibytes(limits.memory)).toBeGreaterThan(mebibytes(requests.memory));
    expect(requests.cpu).toBeDefined();
    expect(limits.cpu).toBeUndefined();
  });
});

/** "160Mi", "1Gi" → MiB. */
function mebibytes(quantity: string): number {
  const match = /^(\d+)(Mi|Gi)$/.exec(quantity);
  if (!match) throw new Error(`not a quantity in Mi or Gi: ${quantity}`);
  return Number(match[1]) * (match[2] === 'Gi' ? 1024 : 1);
}
