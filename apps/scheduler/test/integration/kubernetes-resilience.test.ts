import { issueToken } from '@gpulab/db';
import { ResourceStore } from '@gpulab/testing';
import type { KubernetesLauncher } from '../../src/launchers/kubernetes';
import { attemptPod, attemptSecret } from '../../src/launchers/kubernetes-pod';
import { stopOrphans } from '../../src/reconcile';
import { eventually, type KubeWorld, NAMESPACE, startKubeWorld } from './kube-harness';

let w: KubeWorld;
beforeAll(async () => {
  w = await startKubeWorld();
});
afterEach(async () => w?.cleanup());
afterAll(async () => w?.close());

const PODS = ResourceStore.type('pods');
/** Pods created (each gets exactly one Scheduled event). */
const createsOf = (name: string) =>
  w.kube
    .events(NAMESPACE)
    .filter((e) => e.reason === 'Scheduled' && (e.involvedObject as { name: string }).name === name).length;
const requestsSince = (i: number, method: string, suffix: string, status: number) =>
  w.kube.http.requests.slice(i).filter((r) => r.method === method && r.path.endsWith(suffix) && r.status === status);

/** What a scheduler that died mid-launch left behind: the attempt's pod (and maybe its Secret), created through the API. */
async function leftBehind(launcher: KubernetesLauncher, id: string, token: string | null) {
  const name = `gpulab-${id}-1`;
  const req = {
    jobId: id,
    attempt: 1,
    name,
    flavor: 'a100',
    gpus: 1,
    userId: w.membership.userId,
    maxRuntimeSeconds: 1800,
    env: {
      GPULAB_JOB_ID: id,
      GPULAB_ATTEMPT: '1',
      GPULAB_JOB_SPEC: JSON.stringify({ name: 'fake a1=sleep:1500,exit:0' }),
      GPULAB_JOB_TOKEN: token ?? 'gpj_placeholder',
    },
  };
  if (token)
    await launcher.core.createNamespacedSecret({ namespace: NAMESPACE, body: attemptSecret(launcher.template, req) });
  await launcher.core.createNamespacedPod({ namespace: NAMESPACE, body: attemptPod(launcher.template, req) });
  return name;
}

/** Cuts the launcher's watch and keeps it down until the returned function is called. */
function blockWatch(): () => void {
  w.kube.inject({ method: 'GET', path: /namespaces\/gpulab-test\/pods$/, code: 503, times: 10_000 });
  w.kube.dropWatches();
  return () => {
    w.kube.http.faults.length = 0;
  };
}

describe('kubernetes launcher: adoption, watch failures, restarts', () => {
  it('a pod left without its Secret: create answers 409 AlreadyExists and the pod is adopted, not duplicated', async () => {
    const id = await w.submit('fake a1=sleep:1500,exit:0');
    const launcher = w.makeLauncher();
    await launcher.running(); // listed and watching
    const unblock = blockWatch(); // the launcher cannot learn about the pod from its cache
    const name = await leftBehind(launcher, id, null);
    const mark = w.kube.http.requests.length;
    const s = w.makeScheduler(launcher);
    const running = w.until(id, ['RUNNING', 'FAILED'], s);
    await new Promise((r) => setTimeout(r, 600));
    unblock();
    expect((await running).status).toBe('RUNNING');
    expect(requestsSince(mark, 'POST', '/pods', 409)).toHaveLength(1);
    expect(requestsSince(mark, 'POST', '/pods', 201)).toHaveLength(0);
    expect(w.kube.pods(NAMESPACE).filter((p) => p.metadata.name === name)).toHaveLength(1);
    // the pod could not start without its Secret, so it starts with the token written by this launch
    const live = await w.db.apiToken.findMany({ where: { jobId: id, revokedAt: null } });
    expect(live).toHaveLength(1);
    const job = await w.until(id, ['SUCCEEDED', 'FAILED'], s);
    expect(job.status).toBe('SUCCEEDED');
    expect(await w.db.jobAttempt.count({ where: { jobId: id } })).toBe(1);
    expect(createsOf(name)).toBe(1);
    await s.stop();
    await launcher.close();
  });

  it('a running pod and its Secret left behind: adopted through the Secret 409; the pod keeps its own token', async () => {
    const id = await w.submit('fake a1=sleep:1500,exit:0');
    const launcher = w.makeLauncher();
    await launcher.running();
    const earlier = await issueToken(w.db, { userId: w.membership.userId, name: 'x', scope: 'job', jobId: id });
    const unblock = blockWatch(); // the launcher cannot learn about the pod from its cache
    const name = await leftBehind(launcher, id, earlier.secret);
    await eventually(() => w.kube.kubelet.logs(NAMESPACE, name)?.text().includes('fake trainer') || undefined);
    const mark = w.kube.http.requests.length;
    const s = w.makeScheduler(launcher);
    const running = w.until(id, ['RUNNING', 'FAILED'], s);
    await new Promise((r) => setTimeout(r, 300));
    unblock();
    expect((await running).status).toBe('RUNNING');
    expect(requestsSince(mark, 'POST', '/secrets', 409)).toHaveLength(1);
    expect(requestsSince(mark, 'POST', '/pods', 201)).toHaveLength(0);
    expect(requestsSince(mark, 'PUT', `/secrets/${name}`, 200)).toHaveLength(0);
    const tokens = await w.db.apiToken.findMany({ where: { jobId: id }, orderBy: { createdAt: 'asc' } });
    expect(tokens.map((t) => [t.id === earlier.id, t.revokedAt === null])).toEqual([
      [true, true],
      [false, false],
    ]);
    const job = await w.until(id, ['SUCCEEDED', 'FAILED'], s);
    expect(job.status).toBe('SUCCEEDED');
    expect(createsOf(name)).toBe(1);
    await s.stop();
    await launcher.close();
  });

  it('410 Gone after compaction: the watcher lists again and still sees the pod end', async () => {
    const launcher = w.makeLauncher();
    const s = w.makeScheduler(launcher);
    const id = await w.submit('fake a1=sleep:1500,exit:0');
    await w.until(id, ['RUNNING'], s);
    const lists = launcher.watcher.stats.lists;
    // the watch drops and cannot come back for a while; meanwhile etcd compacts past our resourceVersion
    w.kube.inject({ method: 'GET', path: /namespaces\/gpulab-test\/pods$/, code: 503, times: 3 });
    w.kube.dropWatches();
    w.kube.compact();
    const job = await w.until(id, ['SUCCEEDED', 'FAILED'], s);
    expect(job.status).toBe('SUCCEEDED');
    expect(launcher.watcher.stats.expired).toBeGreaterThanOrEqual(1);
    expect(launcher.watcher.stats.lists).toBeGreaterThan(lists);
    await s.stop();
    await launcher.close();
  });

  it('a watch cut mid-run resumes from its resourceVersion and misses nothing that happened meanwhile', async () => {
    const launcher = w.makeLauncher();
    const s = w.makeScheduler(launcher);
    const id = await w.submit('fake a1=sleep:900,exit:0');
    await w.until(id, ['RUNNING'], s);
    const name = `gpulab-${id}-1`;
    const lists = launcher.watcher.stats.lists;
    w.kube.inject({ method: 'GET', path: /namespaces\/gpulab-test\/pods$/, code: 503, times: 5 });
    expect(w.kube.dropWatches()).toBeGreaterThan(0);
    // the pod ends while the scheduler cannot watch
    await eventually(() => {
      const p = w.kube.store.get(PODS, NAMESPACE, name);
      return (p?.status as { phase?: string } | undefined)?.phase === 'Succeeded' ? true : undefined;
    });
    const job = await w.until(id, ['SUCCEEDED', 'FAILED'], s);
    expect(job.status).toBe('SUCCEEDED');
    expect(launcher.watcher.stats.errors).toBeGreaterThanOrEqual(1);
    expect(launcher.watcher.stats.expired).toBe(0);
    expect(launcher.watcher.stats.lists).toBe(lists); // resumed, not re-listed
    await s.stop();
    await launcher.close();
  });

  it('scheduler restart mid-run: the new one adopts the running pod — no second pod, no lost job', async () => {
    const first = w.makeLauncher();
    const s1 = w.makeScheduler(first);
    const id = await w.submit('fake a1=sleep:2500,exit:0 a2=exit:0');
    await w.until(id, ['RUNNING'], s1);
    await s1.stop();
    await first.close(); // the scheduler dies; its pod keeps running
    const name = `gpulab-${id}-1`;
    expect(w.kube.pods(NAMESPACE).map((p) => p.metadata.name)).toContain(name);
    const second = w.makeLauncher();
    const s2 = w.makeScheduler(second);
    await s2.recover();
    const job = await w.until(id, ['SUCCEEDED', 'FAILED'], s2);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.attempt).toBe(1);
    expect(await w.db.jobAttempt.count({ where: { jobId: id } })).toBe(1);
    expect(createsOf(name)).toBe(1);
    expect(createsOf(`gpulab-${id}-2`)).toBe(0);
    expect((await w.transitions(id)).filter((t) => t.startsWith('LAUNCHING'))).toHaveLength(1);
    await s2.stop();
    await second.close();
  });

  it('a pod that finished while no scheduler ran is reported with its real exit code on restart', async () => {
    const first = w.makeLauncher();
    const s1 = w.makeScheduler(first);
    const id = await w.submit('fake a1=sleep:600,exit:0');
    await w.until(id, ['RUNNING'], s1);
    await s1.stop();
    await first.close();
    const name = `gpulab-${id}-1`;
    await eventually(() => {
      const p = w.kube.store.get(PODS, NAMESPACE, name);
      return (p?.status as { phase?: string } | undefined)?.phase === 'Succeeded' ? true : undefined;
    });
    const second = w.makeLauncher();
    const s2 = w.makeScheduler(second);
    await s2.recover();
    const job = await w.until(id, ['SUCCEEDED', 'FAILED', 'RETRYING'], s2);
    expect(job.status).toBe('SUCCEEDED');
    const att = await w.db.jobAttempt.findFirstOrThrow({ where: { jobId: id } });
    expect(att.exitCode).toBe(0);
    await eventually(() => (w.kube.store.get(PODS, NAMESPACE, name) ? undefined : true));
    await s2.stop();
    await second.close();
  });

  it('stops orphan pods the database does not know as live', async () => {
    const launcher = w.makeLauncher();
    const s = w.makeScheduler(launcher);
    const id = await w.submit('fake a1=sleep:30000,exit:0');
    await w.until(id, ['RUNNING'], s);
    const name = `gpulab-${id}-1`;
    expect(await stopOrphans((s as unknown as { deps: Parameters<typeof stopOrphans>[0] }).deps)).toEqual([]);
    // the job ended behind the scheduler's back (e.g. a stop that never reached the pod)
    await w.db.job.update({ where: { id }, data: { status: 'CANCELLED' } });
    expect(await stopOrphans((s as unknown as { deps: Parameters<typeof stopOrphans>[0] }).deps)).toEqual([name]);
    await eventually(() => (w.kube.store.get(PODS, NAMESPACE, name) ? undefined : true));
    await s.stop();
    await launcher.close();
  });

  it('a pod that cannot be scheduled within the start timeout is removed and the attempt retried, then failed', async () => {
    // another tenant takes the only t4 GPU; this launcher does not subtract foreign pods, so admission over-admits
    w.kube.store.create(PODS, {
      metadata: { name: 'tenant-t4', namespace: 'other' },
      spec: {
        nodeName: 't4-1',
        containers: [
          {
            name: 'x',
            image: 'busybox:1',
            command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'],
            resources: { limits: { 'nvidia.com/gpu': '1' }, requests: { 'nvidia.com/gpu': '1' } },
          },
        ],
      },
      status: { phase: 'Pending' },
    });
    const launcher = w.makeLauncher({ launcher: { startTimeoutMs: 800, capacity: { subtractForeignPods: false } } });
    const s = w.makeScheduler(launcher);
    const id = await w.submit('fake a1=exit:0', { flavor: 't4' });
    const job = await w.until(id, ['SUCCEEDED', 'FAILED'], s);
    expect(job.status).toBe('FAILED');
    expect(job.statusReason).toBe('retries_exhausted');
    expect(job.statusMessage).toMatch(
      /launch failed: pod gpulab-.*-2 was not scheduled within 1 s \(Unschedulable: 0\/\d nodes are available: .*Insufficient nvidia.com\/gpu/,
    );
    expect(job.usedSeconds).toBe(0);
    expect(w.kube.pods(NAMESPACE).filter((p) => p.metadata.labels?.['gpulab.dev/job'] === id)).toEqual([]);
    await s.stop();
    await launcher.close();
  });
});
