import { PassThrough } from 'node:stream';
import {
  ApiException,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  Log,
  type V1Pod,
  Watch,
} from '@kubernetes/client-node';
import { startTestKube, type TestKube } from '../src/kube';

const NODE = process.execPath;
let kube: TestKube;
let core: CoreV1Api;
let kc: KubeConfig;
const ns = 'gpulab';

beforeAll(async () => {
  kube = await startTestKube({
    namespace: ns,
    nodes: [
      { name: 'a100-1', gpus: 2, labels: { 'gpulab.dev/flavor': 'a100' } },
      {
        name: 't4-1',
        gpus: 1,
        labels: { 'gpulab.dev/flavor': 't4' },
        taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }],
      },
    ],
    images: { 'busybox:1': [NODE, '-e'] },
    badImages: ['nope:1'],
    pullBackOffMs: 50,
    baseEnv: { PATH: process.env.PATH },
  });
  kc = new KubeConfig();
  kc.loadFromOptions(kube.kubeconfig());
  core = kc.makeApiClient(CoreV1Api);
});
afterAll(async () => kube.close());

function pod(name: string, script: string, extra: Partial<NonNullable<V1Pod['spec']>> = {}, gpus = 0): V1Pod {
  return {
    metadata: { name, labels: { app: 'test', run: name } },
    spec: {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'main',
          image: 'busybox:1',
          args: [script],
          ...(gpus ? { resources: { limits: { 'nvidia.com/gpu': String(gpus) } } } : {}),
          env: [{ name: 'GREETING', value: 'hi' }],
        },
      ],
      ...extra,
    },
  };
}

async function waitFor<T>(fn: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const phaseOf = async (name: string, want: string[]) =>
  waitFor(async () => {
    const p = await core.readNamespacedPod({ name, namespace: ns });
    return want.includes(p.status?.phase ?? '') ? p : undefined;
  });

/** Waits until the container has printed `text` (its signal handlers are installed by then). */
const logged = async (name: string, text: string) =>
  waitFor(async () => {
    const log = await core.readNamespacedPodLog({ name, namespace: ns }).catch(() => '');
    return log.includes(text) ? true : undefined;
  });

async function expectApiError(p: Promise<unknown>, code: number): Promise<Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ApiException);
    expect((e as ApiException<string>).code).toBe(code);
    return JSON.parse((e as ApiException<string>).body) as Record<string, unknown>;
  }
  throw new Error(`expected HTTP ${code}`);
}

describe('test Kubernetes API server through @kubernetes/client-node', () => {
  it('runs a pod to Succeeded with its env and a secret, and serves its log', async () => {
    await kube.createSecret('s3', { key: 'sekrit' });
    const p = pod('hello', 'console.log(process.env.GREETING, process.env.SECRET); process.exit(0)');
    p.spec!.containers[0]!.env!.push({ name: 'SECRET', valueFrom: { secretKeyRef: { name: 's3', key: 'key' } } });
    const created = await core.createNamespacedPod({ namespace: ns, body: p });
    expect(created.metadata?.uid).toBeTruthy();
    expect(created.status?.phase).toBe('Pending');
    const done = await phaseOf('hello', ['Succeeded', 'Failed']);
    expect(done.status?.phase).toBe('Succeeded');
    expect(done.spec?.nodeName).toBe('a100-1');
    expect(done.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    const log = await core.readNamespacedPodLog({ name: 'hello', namespace: ns });
    expect(log).toBe('hi sekrit\n');
    const reasons = kube.events(ns).filter((e) => (e.involvedObject as { name: string }).name === 'hello');
    expect(reasons.map((e) => e.reason)).toEqual(expect.arrayContaining(['Scheduled', 'Pulled', 'Started']));
  });

  it('answers 409 AlreadyExists, 404 NotFound and 422 Invalid with real Status objects', async () => {
    const s409 = await expectApiError(core.createNamespacedPod({ namespace: ns, body: pod('hello', '') }), 409);
    expect(s409).toMatchObject({ kind: 'Status', reason: 'AlreadyExists', code: 409, details: { name: 'hello' } });
    const s404 = await expectApiError(core.readNamespacedPod({ name: 'ghost', namespace: ns }), 404);
    expect(s404).toMatchObject({ kind: 'Status', reason: 'NotFound', message: 'pods "ghost" not found' });
    const bad = pod('Bad_Name', '');
    const s422 = await expectApiError(core.createNamespacedPod({ namespace: ns, body: bad }), 422);
    expect(s422).toMatchObject({ reason: 'Invalid' });
    const gpuMismatch = pod('gpu-mismatch', '');
    gpuMismatch.spec!.containers[0]!.resources = {
      limits: { 'nvidia.com/gpu': '1' },
      requests: { 'nvidia.com/gpu': '2' },
    };
    const s = await expectApiError(core.createNamespacedPod({ namespace: ns, body: gpuMismatch }), 422);
    expect(String(s.message)).toMatch(/must be equal to nvidia.com\/gpu limit/);
    // schema errors come from kubernetes-models: an unparseable quantity
    const r = await fetch(`${kube.url}/api/v1/namespaces/${ns}/pods`, {
      method: 'POST',
      headers: { authorization: `Bearer ${kube.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        metadata: { name: 'q' },
        spec: { containers: [{ name: 'c', image: 'x', resources: { limits: { cpu: 'lots' } } }] },
      }),
    });
    expect(r.status).toBe(422);
    expect(((await r.json()) as { message: string }).message).toMatch(/quantity/);
  });

  it('rejects requests without the bearer token', async () => {
    const r = await fetch(`${kube.url}/api/v1/namespaces/${ns}/pods`);
    expect(r.status).toBe(401);
  });

  it('lists by label selector and watches from a resourceVersion; 410 Expired after compaction', async () => {
    const list = await core.listNamespacedPod({ namespace: ns, labelSelector: 'app=test,run in (hello)' });
    expect(list.items.map((p) => p.metadata?.name)).toEqual(['hello']);
    expect((await core.listNamespacedPod({ namespace: ns, labelSelector: 'app!=test' })).items).toEqual([]);
    const rv = list.metadata!.resourceVersion!;
    const seen: string[] = [];
    const watch = new Watch(kc);
    const ctl = await watch.watch(
      `/api/v1/namespaces/${ns}/pods`,
      { resourceVersion: rv, labelSelector: 'run=w1' },
      (type, obj: V1Pod) => seen.push(`${type}:${obj.metadata?.name}:${obj.status?.phase}`),
      () => undefined,
    );
    await core.createNamespacedPod({ namespace: ns, body: pod('w1', 'process.exit(3)') });
    await waitFor(() => (seen.some((s) => s.endsWith(':Failed')) ? true : undefined));
    expect(seen[0]).toBe('ADDED:w1:Pending');
    const failed = await core.readNamespacedPod({ name: 'w1', namespace: ns });
    expect(failed.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    ctl.abort();

    kube.compact();
    const events: Array<{ type: string; code?: number }> = [];
    await watch.watch(
      `/api/v1/namespaces/${ns}/pods`,
      { resourceVersion: rv },
      (type, obj: { code?: number }) => events.push({ type, code: obj.code }),
      () => undefined,
    );
    await waitFor(() => (events.length ? true : undefined));
    expect(events).toEqual([{ type: 'ERROR', code: 410 }]);
  });

  it('a dropped watch connection ends the stream with an error for the client', async () => {
    const watch = new Watch(kc);
    let done: unknown = 'open';
    await watch.watch(
      `/api/v1/namespaces/${ns}/pods`,
      {},
      () => undefined,
      (err) => {
        done = err;
      },
    );
    await waitFor(() => (kube.http.openWatches > 0 ? true : undefined));
    expect(kube.dropWatches()).toBeGreaterThan(0);
    await waitFor(() => (done !== 'open' ? true : undefined));
  });

  it('schedules by nodeSelector, tolerations and free GPUs; unschedulable pods say why', async () => {
    const t4 = pod('t4-no-toleration', 'setTimeout(() => {}, 100)', { nodeSelector: { 'gpulab.dev/flavor': 't4' } }, 1);
    await core.createNamespacedPod({ namespace: ns, body: t4 });
    const pending = await waitFor(async () => {
      const p = await core.readNamespacedPod({ name: 't4-no-toleration', namespace: ns });
      return p.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
    });
    expect(pending.reason).toBe('Unschedulable');
    expect(pending.message).toMatch(/0\/2 nodes are available: .*untolerated taint \{nvidia.com\/gpu: present\}/);

    const big = pod('three-gpus', '', { nodeSelector: { 'gpulab.dev/flavor': 'a100' } }, 3);
    await core.createNamespacedPod({ namespace: ns, body: big });
    const c = await waitFor(async () => {
      const p = await core.readNamespacedPod({ name: 'three-gpus', namespace: ns });
      return p.status?.conditions?.find((x) => x.type === 'PodScheduled' && x.status === 'False');
    });
    expect(c.message).toMatch(/Insufficient nvidia.com\/gpu/);
    await core.deleteNamespacedPod({ name: 'three-gpus', namespace: ns });
    await core.deleteNamespacedPod({ name: 't4-no-toleration', namespace: ns });
    await expectApiError(core.readNamespacedPod({ name: 'three-gpus', namespace: ns }), 404);
  });

  it('deletes a running pod gracefully: SIGTERM, then the exit code in the final status', async () => {
    const script =
      "process.on('SIGTERM', () => { console.log('bye'); process.exit(12) }); console.log('ready'); setInterval(() => {}, 1000)";
    await core.createNamespacedPod({ namespace: ns, body: pod('graceful', script, {}, 1) });
    await logged('graceful', 'ready');
    const seen: V1Pod[] = [];
    const watch = new Watch(kc);
    const ctl = await watch.watch(
      `/api/v1/namespaces/${ns}/pods`,
      { labelSelector: 'run=graceful' },
      (type, obj: V1Pod) => {
        if (type === 'DELETED') seen.push(obj);
      },
      () => undefined,
    );
    const res = await core.deleteNamespacedPod({ name: 'graceful', namespace: ns, gracePeriodSeconds: 5 });
    expect(res.metadata?.deletionTimestamp).toBeTruthy();
    const gone = await waitFor(() => seen[0]);
    expect(gone.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(12);
    ctl.abort();
  });

  it('kills an ignoring process with SIGKILL after the grace period', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: pod('stubborn', "process.on('SIGTERM', () => {}); console.log('ready'); setInterval(() => {}, 1000)"),
    });
    await logged('stubborn', 'ready');
    const t0 = Date.now();
    await core.deleteNamespacedPod({ name: 'stubborn', namespace: ns, gracePeriodSeconds: 1 });
    await waitFor(async () => (kube.pods(ns).some((p) => p.metadata.name === 'stubborn') ? undefined : true));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  });

  it('streams a log with follow until the container exits', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: pod(
        'chatty',
        "let i = 0; const t = setInterval(() => { console.log('line ' + i++); if (i === 3) { clearInterval(t); } }, 50)",
      ),
    });
    await phaseOf('chatty', ['Running', 'Succeeded']);
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => {
      text += c.toString();
    });
    const ended = new Promise((r) => out.on('end', r));
    await new Log(kc).log(ns, 'chatty', 'main', out, { follow: true });
    await ended;
    expect(text).toBe('line 0\nline 1\nline 2\n');
  });

  it('serves log lines with timestamps and from a sinceTime', async () => {
    const ts = await core.readNamespacedPodLog({ name: 'chatty', namespace: ns, timestamps: true });
    const lines = ts.split('\n').filter(Boolean);
    expect(lines).toHaveLength(3);
    for (const [i, l] of lines.entries()) expect(l).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z line ${i}$`));
    const future = new Date(Date.now() + 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const logAt = async (since: string) =>
      (
        await fetch(`${kube.url}/api/v1/namespaces/${ns}/pods/chatty/log?sinceTime=${since}`, {
          headers: { authorization: `Bearer ${kube.token}` },
        })
      ).text();
    expect(await logAt(future)).toBe('');
    const second = lines[1]!.slice(0, lines[1]!.indexOf(' '));
    expect(await logAt(second.replace(/Z$/, '').slice(0, 23) + 'Z')).toMatch(/line 1\nline 2\n$/);
    const all = await core.listPodForAllNamespaces({ fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed' });
    expect(all.items.every((p) => !['Succeeded', 'Failed'].includes(p.status?.phase ?? ''))).toBe(true);
  });

  it('keeps a pod with a bad image in ErrImagePull / ImagePullBackOff', async () => {
    const p = pod('badimg', '');
    p.spec!.containers[0]!.image = 'nope:1';
    await core.createNamespacedPod({ namespace: ns, body: p });
    const reasons = new Set<string>();
    await waitFor(async () => {
      const cur = await core.readNamespacedPod({ name: 'badimg', namespace: ns });
      const r = cur.status?.containerStatuses?.[0]?.state?.waiting?.reason;
      if (r && r !== 'ContainerCreating') reasons.add(r);
      return reasons.size === 2 ? true : undefined;
    });
    expect([...reasons].sort()).toEqual(['ErrImagePull', 'ImagePullBackOff']);
    await expectApiError(core.readNamespacedPodLog({ name: 'badimg', namespace: ns }), 400);
    await core.deleteNamespacedPod({ name: 'badimg', namespace: ns });
  });

  it('waits in CreateContainerConfigError until a referenced secret exists', async () => {
    const p = pod('needs-secret', 'console.log(process.env.T)');
    p.spec!.containers[0]!.env = [{ name: 'T', valueFrom: { secretKeyRef: { name: 'later', key: 'k' } } }];
    await core.createNamespacedPod({ namespace: ns, body: p });
    await waitFor(async () => {
      const cur = await core.readNamespacedPod({ name: 'needs-secret', namespace: ns });
      return cur.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError'
        ? true
        : undefined;
    });
    await kube.createSecret('later', { k: 'now' });
    await phaseOf('needs-secret', ['Succeeded']);
    expect(await core.readNamespacedPodLog({ name: 'needs-secret', namespace: ns })).toBe('now\n');
  });

  it('fails a pod past activeDeadlineSeconds with DeadlineExceeded', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: pod('deadline', 'setInterval(() => {}, 1000)', {
        activeDeadlineSeconds: 1,
        terminationGracePeriodSeconds: 1,
      }),
    });
    const p = await phaseOf('deadline', ['Failed']);
    expect(p.status?.reason).toBe('DeadlineExceeded');
  });

  it('evicts and OOM-kills on request', async () => {
    await core.createNamespacedPod({ namespace: ns, body: pod('evictme', 'setInterval(() => {}, 1000)') });
    await core.createNamespacedPod({ namespace: ns, body: pod('oom', 'setInterval(() => {}, 1000)') });
    await phaseOf('evictme', ['Running']);
    await phaseOf('oom', ['Running']);
    kube.kubelet.evict(ns, 'evictme');
    kube.kubelet.oomKill(ns, 'oom');
    const e = await phaseOf('evictme', ['Failed']);
    expect(e.status?.reason).toBe('Evicted');
    const o = await phaseOf('oom', ['Failed']);
    expect(o.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 137, reason: 'OOMKilled' });
  });

  it('lists nodes with allocatable GPUs; deleting a node deletes its pods', async () => {
    const nodes = await core.listNode();
    expect(nodes.items.map((n) => [n.metadata?.name, n.status?.allocatable?.['nvidia.com/gpu']])).toEqual([
      ['a100-1', '2'],
      ['t4-1', '1'],
    ]);
    await kube.addNode({ name: 'a100-2', gpus: 1, labels: { 'gpulab.dev/flavor': 'a100' } });
    await core.createNamespacedPod({
      namespace: ns,
      body: pod('on-lost-node', 'setInterval(() => {}, 1000)', {
        nodeSelector: { 'kubernetes.io/hostname': 'a100-2' },
      }),
    });
    await phaseOf('on-lost-node', ['Running']);
    await core.deleteNode({ name: 'a100-2' });
    await waitFor(async () => (kube.pods(ns).some((p) => p.metadata.name === 'on-lost-node') ? undefined : true));
  });

  it('leases: create, read, replace with optimistic concurrency (409 Conflict on a stale resourceVersion)', async () => {
    const leases = kc.makeApiClient(CoordinationV1Api);
    const body = { metadata: { name: 'sched' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15 } };
    const l = await leases.createNamespacedLease({ namespace: ns, body });
    await expectApiError(leases.createNamespacedLease({ namespace: ns, body }), 409);
    const next = await leases.replaceNamespacedLease({
      name: 'sched',
      namespace: ns,
      body: { ...l, spec: { ...l.spec, holderIdentity: 'b' } },
    });
    expect(next.spec?.holderIdentity).toBe('b');
    const stale = await expectApiError(
      leases.replaceNamespacedLease({ name: 'sched', namespace: ns, body: { ...l, spec: { holderIdentity: 'c' } } }),
      409,
    );
    expect(stale).toMatchObject({ reason: 'Conflict' });
    expect((await leases.readNamespacedLease({ name: 'sched', namespace: ns })).spec?.holderIdentity).toBe('b');
  });
});
