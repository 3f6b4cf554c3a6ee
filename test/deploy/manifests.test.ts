import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '@gpulab/config';
import { assertValidManifest, checkManifest, REPO_ROOT, stopValidator } from '@gpulab/testing';
import { attemptPod } from '../../apps/scheduler/src/launchers/kubernetes-pod';
import { kubectlKustomize, type Manifest, renderKustomization } from './kustomize';

afterAll(() => stopValidator());

const DEPLOY = path.join(REPO_ROOT, 'deploy');
const OVERLAYS = { dev: 'gpulab-dev', production: 'gpulab' } as const;
/** Secrets the operator creates (docs/deploy.md); everything else a manifest refers to must be rendered. */
const EXTERNAL_SECRETS = new Set(['gpulab-secrets', 'gpulab-s3']);

const key = (m: Manifest) => `${m.kind}/${m.metadata.namespace ?? ''}/${m.metadata.name}`;
const byKey = (ms: Manifest[]) => Object.fromEntries(ms.map((m) => [key(m), m]));
const find = (ms: Manifest[], kind: string, name: string) =>
  ms.find((m) => m.kind === kind && m.metadata.name === name);

type PodSpec = {
  serviceAccountName?: string;
  containers: Array<{
    name: string;
    image: string;
    env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string } } }>;
    envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
    readinessProbe?: { httpGet?: { path: string } };
    livenessProbe?: { httpGet?: { path: string } };
  }>;
};
const podSpecOf = (m: Manifest) => (m.spec as { template: { spec: PodSpec } }).template.spec;

/** The environment a Deployment's container starts with: its ConfigMap, placeholder secrets, fieldRefs. */
function envOf(ms: Manifest[], m: Manifest, namespace: string): Record<string, string> {
  const c = podSpecOf(m).containers[0]!;
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, find(ms, 'ConfigMap', from.configMapRef.name)!.data as object);
    if (from.secretRef)
      Object.assign(env, {
        DATABASE_URL: 'postgresql://gpulab@postgres:5432/gpulab',
        REDIS_URL: 'redis://redis:6379',
        GPULAB_S3_ACCESS_KEY_ID: 'x',
        GPULAB_S3_SECRET_ACCESS_KEY: 'y',
      });
  }
  for (const e of c.env ?? [])
    env[e.name] = e.value ?? (e.name === 'GPULAB_KUBE_NAMESPACE' ? namespace : `${m.metadata.name}-0`);
  return env;
}

/** Does the Role or ClusterRole allow `verb` on `resource` in `group`? */
function allows(role: Manifest | undefined, group: string, resource: string, verb: string): boolean {
  const rules = (role?.rules ?? []) as Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>;
  return rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));
}

describe.each(Object.entries(OVERLAYS))('deploy/overlays/%s', (overlay, namespace) => {
  const dir = path.join(DEPLOY, 'overlays', overlay);
  const ms = renderKustomization(dir);

  it('renders as kubectl kustomize does (where kubectl is installed)', () => {
    expect(ms.length).toBeGreaterThanOrEqual(10);
    const real = kubectlKustomize(dir);
    if (real) expect(byKey(ms)).toEqual(byKey(real));
  });

  it('every manifest validates against the Kubernetes schemas and the API server rules', async () => {
    for (const m of ms) {
      await assertValidManifest(m);
      expect([key(m), checkManifest(m as never)]).toEqual([key(m), []]);
    }
  });

  it('puts every namespaced object and every bound service account in the overlay namespace', () => {
    for (const m of ms)
      if (!m.kind.startsWith('Cluster')) expect([key(m), m.metadata.namespace]).toEqual([key(m), namespace]);
    for (const b of ms.filter((m) => m.kind.endsWith('RoleBinding'))) {
      for (const s of b.subjects as Array<{ kind: string; name: string; namespace: string }>) {
        expect(s.namespace).toBe(namespace);
        expect(find(ms, 'ServiceAccount', s.name)).toBeDefined();
      }
      const ref = b.roleRef as { kind: string; name: string };
      expect(find(ms, ref.kind, ref.name)).toBeDefined();
    }
  });

  it('refers only to objects it renders, or to the two Secrets the operator creates', () => {
    for (const m of ms.filter((x) => x.kind === 'Deployment')) {
      const spec = podSpecOf(m);
      expect(find(ms, 'ServiceAccount', spec.serviceAccountName!)).toBeDefined();
      for (const c of spec.containers)
        for (const from of c.envFrom ?? []) {
          if (from.configMapRef) expect(find(ms, 'ConfigMap', from.configMapRef.name)).toBeDefined();
          if (from.secretRef) expect(EXTERNAL_SECRETS.has(from.secretRef.name)).toBe(true);
        }
    }
    const api = find(ms, 'Deployment', 'gpulab-api')!;
    const svc = find(ms, 'Service', 'gpulab-api')!;
    const podLabels = (api.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata
      .labels;
    expect(podLabels).toMatchObject((svc.spec as { selector: Record<string, string> }).selector);
    const c = podSpecOf(api).containers[0]!;
    expect([c.readinessProbe?.httpGet?.path, c.livenessProbe?.httpGet?.path]).toEqual(['/readyz', '/healthz']);
  });

  it('gives the scheduler exactly the API access the kubernetes launcher and the Lease use', () => {
    const role = find(ms, 'Role', 'gpulab-scheduler');
    for (const verb of ['get', 'list', 'watch', 'create', 'delete']) expect(allows(role, '', 'pods', verb)).toBe(true);
    expect(allows(role, '', 'pods/log', 'get')).toBe(true);
    for (const verb of ['get', 'create', 'update', 'delete']) expect(allows(role, '', 'secrets', verb)).toBe(true);
    expect(allows(role, '', 'secrets', 'list')).toBe(false); // it never needs to read other Secrets in bulk
    for (const verb of ['get', 'create', 'update'])
      expect(allows(role, 'coordination.k8s.io', 'leases', verb)).toBe(true);
    const cluster = ms.find((m) => m.kind === 'ClusterRole')!;
    expect(allows(cluster, '', 'nodes', 'list')).toBe(true);
    expect(allows(cluster, '', 'pods', 'list')).toBe(true);
    expect(allows(cluster, '', 'pods', 'create')).toBe(false);
    expect(find(ms, 'ServiceAccount', 'gpulab-api')!.automountServiceAccountToken).toBe(false);
  });

  it('configures the scheduler so that the environment schema parses and its trainer pods validate', async () => {
    const sched = find(ms, 'Deployment', 'gpulab-scheduler')!;
    const config = loadConfig(envOf(ms, sched, namespace));
    expect(config.launcher).toBe('kubernetes');
    expect(config.leader).toMatchObject({ election: 'lease', identity: 'gpulab-scheduler-0' });
    expect(config.kube.namespace).toBe(namespace);
    expect(find(ms, 'ServiceAccount', config.kube.serviceAccountName!)).toBeDefined();
    expect(EXTERNAL_SECRETS.has(config.kube.s3SecretName!)).toBe(true);
    const pod = attemptPod(
      {
        namespace: config.kube.namespace,
        image: config.kube.image,
        imagePullPolicy: config.kube.imagePullPolicy,
        command: config.kube.trainerCommand,
        flavorLabel: config.kube.flavorLabel,
        flavorValues: config.kube.flavorValues,
        gpuTaints: config.kube.gpuTaints,
        s3SecretName: config.kube.s3SecretName,
        serviceAccountName: config.kube.serviceAccountName,
        terminationGraceSeconds: Math.ceil(config.scheduler.stopGraceMs / 1000),
        deadlineMarginSeconds: 300,
        cpuPerGpu: config.kube.cpuPerGpu,
        memoryGiBPerGpu: config.kube.memoryGiBPerGpu,
      },
      {
        jobId: '5f0c6a3e-8d2b-4f3e-9a51-0c1d2e3f4a5b',
        attempt: 1,
        name: 'gpulab-5f0c6a3e-8d2b-4f3e-9a51-0c1d2e3f4a5b-1',
        flavor: Object.keys(config.kube.flavorValues)[0] ?? 'a100',
        gpus: 1,
        maxRuntimeSeconds: 3600,
        env: { GPULAB_JOB_TOKEN: 'gpj_x', GPULAB_S3_ACCESS_KEY_ID: 'a', GPULAB_S3_SECRET_ACCESS_KEY: 'b' },
      },
    );
    await assertValidManifest(pod);
    expect(checkManifest(pod as never)).toEqual([]);
    if (overlay === 'production')
      expect(pod.spec!.nodeSelector).toEqual({ 'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB' });
  });
});

describe('deploy/migrate and the overlays together', () => {
  it('the migration Job validates and runs the committed migrations with the API image', async () => {
    const ms = renderKustomization(path.join(DEPLOY, 'migrate'));
    const real = kubectlKustomize(path.join(DEPLOY, 'migrate'));
    if (real) expect(byKey(ms)).toEqual(byKey(real));
    expect(ms.map((m) => m.kind)).toEqual(['Job']);
    await assertValidManifest(ms[0]!);
    expect(checkManifest(ms[0] as never)).toEqual([]);
    const c = podSpecOf(ms[0]!).containers[0]! as unknown as { image: string; command: string[] };
    expect(c.image).toMatch(/^ghcr\.io\/gpulab\/api:/);
    expect(c.command).toEqual(['node', 'scripts/prisma.mjs', 'migrate', 'deploy']);
    expect(existsSync(path.join(REPO_ROOT, 'scripts', 'prisma.mjs'))).toBe(true);
  });

  it('two overlays can share a cluster: no cluster-scoped name is used twice', () => {
    const names = Object.keys(OVERLAYS).flatMap((o) =>
      renderKustomization(path.join(DEPLOY, 'overlays', o))
        .filter((m) => m.kind.startsWith('Cluster'))
        .map((m) => `${m.kind}/${m.metadata.name}`),
    );
    expect(new Set(names).size).toBe(names.length);
  });
});

describe('docker/', () => {
  const files = readdirSync(path.join(REPO_ROOT, 'docker')).filter((f) => f.endsWith('.Dockerfile'));

  it('has the four images', () => {
    expect(files.sort()).toEqual([
      'api.Dockerfile',
      'scheduler.Dockerfile',
      'trainer-cpu.Dockerfile',
      'trainer-gpu.Dockerfile',
    ]);
  });

  it.each(files)('%s: multi-stage, runs as a non-root user, starts a file that exists', (file) => {
    const text = readFileSync(path.join(REPO_ROOT, 'docker', file), 'utf8');
    const stages = text.split('\n').filter((l) => /^FROM /.test(l));
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const final = text.slice(text.lastIndexOf('\nFROM '));
    expect(final).toMatch(/\nUSER node\n/);
    const start = /(?:CMD|ENTRYPOINT) \[(.*)\]/.exec(final)?.[1];
    const entry = JSON.parse(`[${start}]`) as string[];
    expect(entry.slice(0, 3)).toEqual(['node', '--import', 'tsx']);
    expect(existsSync(path.join(REPO_ROOT, entry[3]!))).toBe(true);
    if (file === 'trainer-gpu.Dockerfile') expect(text).toMatch(/@tensorflow\/tfjs-node-gpu@4\.22\.0/);
  });
});
