import { type KubeObject, ResourceStore } from '@gpulab/testing';
import type { V1PodSpec } from '@kubernetes/client-node';
import { BAD_IMAGE, eventually, type KubeWorld, NAMESPACE, startKubeWorld, TRAINER_IMAGE } from './kube-harness';

let w: KubeWorld;
beforeAll(async () => {
  w = await startKubeWorld();
});
afterEach(async () => w?.cleanup());
afterAll(async () => w?.close());

const podsOf = (jobId: string) => w.kube.pods(NAMESPACE).filter((p) => p.metadata.labels?.['gpulab.dev/job'] === jobId);
const gone = (name: string) =>
  eventually(() => (w.kube.pods(NAMESPACE).some((p) => p.metadata.name === name) ? undefined : true));

describe('scheduler lifecycle with the kubernetes launcher (test API server, simulated kubelet)', () => {
  it('runs a pod per attempt to SUCCEEDED, with the pod spec Kubernetes needs, then deletes the pod and its Secret', async () => {
    const launcher = w.makeLauncher();
    const s = w.makeScheduler(launcher);
    const id = await w.submit('fake a1=sleep:1200,exit:0', { maxHours: 0.5 });
    await w.until(id, ['RUNNING'], s);
    const name = `gpulab-${id}-1`;
    const [pod] = podsOf(id) as [KubeObject & { spec: V1PodSpec }];
    expect(pod.metadata.name).toBe(name);
    expect(pod.metadata.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'gpulab',
      'gpulab.dev/job': id,
      'gpulab.dev/attempt': '1',
      'gpulab.dev/user': w.membership.userId,
      'gpulab.dev/flavor': 'a100',
    });
    const spec = pod.spec;
    expect(spec.restartPolicy).toBe('Never');
    expect(spec.terminationGracePeriodSeconds).toBe(5);
    expect(spec.activeDeadlineSeconds).toBe(1800 + 5 + 60);
    expect(spec.nodeSelector).toEqual({ 'gpulab.dev/flavor': 'a100' });
    expect(spec.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(spec.nodeName).toMatch(/^a100-/);
    const c = spec.containers[0]!;
    expect(c.image).toBe(TRAINER_IMAGE);
    expect(c.resources?.limits).toEqual({ 'nvidia.com/gpu': '1' });
    const env = Object.fromEntries((c.env as Array<{ name: string }>).map((e) => [e.name, e]));
    expect(env.GPULAB_JOB_ID).toEqual({ name: 'GPULAB_JOB_ID', value: id });
    expect(env.GPULAB_ATTEMPT).toEqual({ name: 'GPULAB_ATTEMPT', value: '1' });
    // secrets by reference only: the token from the attempt's Secret, S3 keys from the shared one
    expect(env.GPULAB_JOB_TOKEN).toEqual({
      name: 'GPULAB_JOB_TOKEN',
      valueFrom: { secretKeyRef: { name, key: 'GPULAB_JOB_TOKEN' } },
    });
    expect(env.GPULAB_S3_SECRET_ACCESS_KEY).toEqual({
      name: 'GPULAB_S3_SECRET_ACCESS_KEY',
      valueFrom: { secretKeyRef: { name: 's3-credentials', key: 'GPULAB_S3_SECRET_ACCESS_KEY' } },
    });
    expect(JSON.stringify(spec)).not.toMatch(/gpj_|shh/);
    const secret = w.kube.store.get(ResourceStore.type('secrets'), NAMESPACE, name)!;
    const token = Buffer.from(String((secret.data as Record<string, string>).GPULAB_JOB_TOKEN), 'base64').toString();
    expect(token).toMatch(/^gpj_/);
    const live = await w.db.apiToken.findFirstOrThrow({ where: { jobId: id, revokedAt: null } });
    expect(live.prefix).toBe(token.slice(0, 8));

    const job = await w.until(id, ['SUCCEEDED', 'FAILED'], s);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.statusMessage).toBe('training finished');
    expect(await w.transitions(id)).toEqual([
      'QUEUED:submitted',
      'ADMITTED:admitted',
      'LAUNCHING:launched',
      'RUNNING:started',
      'SUCCEEDED:completed',
    ]);
    expect(job.usedSeconds).toBeGreaterThanOrEqual(1);
    const att = await w.db.jobAttempt.findFirstOrThrow({ where: { jobId: id } });
    expect(att).toMatchObject({ launcher: 'kubernetes', handle: name, exitCode: 0, charged: true });
    await gone(name);
    expect(w.kube.store.list(ResourceStore.type('secrets'), NAMESPACE).map((x) => x.metadata.name)).not.toContain(name);
    await s.stop();
    await launcher.close();
  });

  it('fails a user error (exit 10) at once, uncharged, with the trainer message from the pod log', async () => {
    const launcher = w.makeLauncher();
    const s = w.makeScheduler(launcher);
    const id = await w.submit('fake a1=error:dataset_has_no_train_folder,exit:10');
    const job = await w.until(id, ['SUCCEEDED', 'FAILED'], s);
    expect(job.status).toBe('FAILED');
    expect(job.statusReason).toBe('user_error');
    expect(job.statusMessage).toMatch(/dataset_has_no_train_folder/);
    expect(job.usedSeconds).toBe(0);
    // a pod that ended before the scheduler saw it run still gets its whole log onto the bus
    const text = (await w.logs.read(id)).map((e) => e.text).join('');
    expect(text).toMatch(/^fake trainer attempt 1: .*\nerror: dataset_has_no_train_folder\n$/);
    await s.stop();
    await launcher.close();
  });

  it('retries an infrastructure exit (11) in a new pod and succeeds', async () => {
    const launcher = w.makeLauncher();
    const s = w.makeScheduler(launcher);
    const id = await w.submit('fake a1=sleep:200,exit:11 a2=exit:0');
    const job = await w.until(id, ['SUCCEEDED', 'FAILED'], s);
    expect(job.status).toBe('SUCCEEDED');
    expect(job.attempt).toBe(2);
    const attempts = await w.db.jobAttempt.findMany({ where: { jobId: id }, orderBy: { attempt: 'asc' } });
    expect(attempts.map((a) => [a.handle, a.exitCode, a.charged])).toEqual([
      [`gpulab-${id}-1`, 11, false],
      [`gpulab-${id}-2`, 0, true],
    ]);
    await s.stop();
    await launcher.close();
  });

  it('cancels a running job: the pod is deleted with the grace period, the trainer exits 12 on SIGTERM', async () => {
    const launcher = w.makeLauncher();
    const s = w.makeScheduler(launcher);
    const id = await w.submit('fake a1=sleep:30000,exit:0');
    await w.until(id, ['RUNNING'], s);
    await new Promise((r) => setTimeout(r, 1200));
    await w.db.job.update({ where: { id }, data: { stopRequested: 'cancelled' } });
    const job = await w.until(id, ['CANCELLED', 'FAILED', 'SUCCEEDED'], s);
    expect(job.status).toBe('CANCELLED');
    const att = await w.db.jobAttempt.findFirstOrThrow({ where: { jobId: id } });
    expect(att.exitCode).toBe(12);
    expect(job.usedSeconds).toBeGreaterThanOrEqual(1);
    const killing = w.kube
      .events(NAMESPACE)
      .filter((e) => (e.involvedObject as { name: string }).name === `gpulab-${id}-1`);
    expect(killing.map((e) => e.reason)).toContain('Killing');
    await gone(`gpulab-${id}-1`);
    await s.stop();
    await launcher.close();
  });

  it('node lost mid-run: the attempt is retried on another node, and not charged without a checkpoint', async () => {
    const launcher = w.makeLauncher();
    const s = w.makeScheduler(launcher);
    const id = await w.submit('fake a1=sleep:30000,exit:0 a2=sleep:200,exit:0');
    await w.until(id, ['RUNNING'], s);
    const [pod] = podsOf(id);
    const node = (pod!.spec as { nodeName: string }).nodeName;
    w.kube.deleteNode(node);
    const job = await w.until(id, ['SUCCEEDED', 'FAILED'], s);
    expect(job.status).toBe('SUCCEEDED');
    expect(await w.transitions(id)).toEqual([
      'QUEUED:submitted',
      'ADMITTED:admitted',
      'LAUNCHING:launched',
      'RUNNING:started',
      'RETRYING:infrastructure_error',
      'LAUNCHING:launched',
      'RUNNING:started',
      'SUCCEEDED:completed',
    ]);
    const retry = await w.db.jobTransition.findFirstOrThrow({ where: { jobId: id, to: 'RETRYING' } });
    expect(retry.message).toMatch(new RegExp(`killed by NodeLost.*node ${node} lost`));
    const attempts = await w.db.jobAttempt.findMany({ where: { jobId: id }, orderBy: { attempt: 'asc' } });
    expect(attempts.map((a) => [a.signal, a.charged])).toEqual([
      ['NodeLost', false],
      [null, true],
    ]);
    expect(await launcher.capacity()).toMatchObject({ a100: 1 });
    await w.kube.addNode({
      name: node,
      gpus: 1,
      labels: { 'gpulab.dev/flavor': 'a100' },
      taints: [{ key: 'nvidia.com/gpu', value: 'present', effect: 'NoSchedule' }],
    });
    await s.stop();
    await launcher.close();
  });

  it('a trainer image that cannot be pulled fails the job after the timeout, uncharged, saying why', async () => {
    const launcher = w.makeLauncher({ template: { image: BAD_IMAGE } });
    const s = w.makeScheduler(launcher);
    const id = await w.submit('fake a1=exit:0');
    const job = await w.until(id, ['SUCCEEDED', 'FAILED'], s);
    expect(job.status).toBe('FAILED');
    expect(job.statusReason).toBe('user_error');
    expect(job.statusMessage).toMatch(
      /trainer image "gpulab\/trainer:missing" could not be pulled for \d+ s \((ErrImagePull|ImagePullBackOff)/,
    );
    expect(job.usedSeconds).toBe(0);
    expect(job.attempt).toBe(1);
    await gone(`gpulab-${id}-1`);
    await s.stop();
    await launcher.close();
  });

  it('evicted and OOM-killed pods: eviction retries, OOM fails with a hint', async () => {
    const launcher = w.makeLauncher();
    const s = w.makeScheduler(launcher);
    const evicted = await w.submit('fake a1=sleep:30000,exit:0 a2=exit:0');
    await w.until(evicted, ['RUNNING'], s);
    w.kube.kubelet.evict(NAMESPACE, `gpulab-${evicted}-1`);
    const e = await w.until(evicted, ['SUCCEEDED', 'FAILED'], s);
    expect(e.status).toBe('SUCCEEDED');
    const retry = await w.db.jobTransition.findFirstOrThrow({ where: { jobId: evicted, to: 'RETRYING' } });
    expect(retry.message).toMatch(/evicted: The node was low on resource: memory/);

    const oom = await w.submit('fake a1=sleep:30000,exit:0');
    await w.until(oom, ['RUNNING'], s);
    await eventually(
      () => w.kube.kubelet.logs(NAMESPACE, `gpulab-${oom}-1`)?.text().includes('fake trainer') || undefined,
    );
    w.kube.kubelet.oomKill(NAMESPACE, `gpulab-${oom}-1`);
    const o = await w.until(oom, ['SUCCEEDED', 'FAILED'], s);
    expect(o.status).toBe('FAILED');
    expect(o.statusMessage).toMatch(/ran out of memory \(OOMKilled\)/);
    await s.stop();
    await launcher.close();
  });

  it('follows the pod log onto the live log bus, in order, without loss or repeats across a cut stream', async () => {
    const launcher = w.makeLauncher();
    const s = w.makeScheduler(launcher);
    const id = await w.submit('fake a1=sleep:1500,every:100,exit:0');
    await w.until(id, ['RUNNING'], s);
    const busText = async () => (await w.logs.read(id)).map((e) => e.text).join('');
    await eventually(async () => ((await busText()).includes('tick 3') ? true : undefined));
    expect(w.kube.dropLogStreams()).toBe(1);
    const job = await w.until(id, ['SUCCEEDED', 'FAILED'], s);
    expect(job.status).toBe('SUCCEEDED');
    const entries = await w.logs.read(id);
    expect(new Set(entries.map((e) => e.attempt))).toEqual(new Set([1]));
    const lines = entries
      .map((e) => e.text)
      .join('')
      .split('\n')
      .filter(Boolean);
    expect(lines[0]).toMatch(/^fake trainer attempt 1/);
    const ticks = lines.filter((l) => l.startsWith('tick '));
    expect(ticks.length).toBeGreaterThanOrEqual(10);
    expect(ticks).toEqual(ticks.map((_, i) => `tick ${i}`));
  });

  it('capacity: allocatable GPUs per flavor label, less what other tenants hold', async () => {
    const launcher = w.makeLauncher();
    expect(await launcher.capacity()).toEqual({ a100: 2, t4: 1 });
    await w.kube.store.create(ResourceStore.type('pods'), {
      metadata: { name: 'someone-else', namespace: 'other' },
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
      status: { phase: 'Running' },
    });
    expect(await launcher.capacity()).toEqual({ a100: 2, t4: 0 });
    const mapped = w.makeLauncher({ template: { flavorValues: { 'big-gpu': 'a100' } } });
    expect(await mapped.capacity()).toEqual({ 'big-gpu': 2, t4: 0 });
    await launcher.close();
    await mapped.close();
  });
});
