import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '@gpulab/config';
import { ResourceStore } from '@gpulab/testing';
import { KubeConfig } from '@kubernetes/client-node';
import { buildLauncher, electLeader, syncFlavors } from '../../src/compose';
import { acquireLeaseLeadership, type Leadership } from '../../src/leader-lease';
import type { Scheduler } from '../../src/scheduler';
import { eventually, type KubeWorld, log, NAMESPACE, startKubeWorld } from './kube-harness';

let w: KubeWorld;
beforeAll(async () => {
  w = await startKubeWorld();
});
afterEach(async () => w?.cleanup());
afterAll(async () => w?.close());

const LEASES = ResourceStore.type('leases');
const kc = () => {
  const k = new KubeConfig();
  k.loadFromOptions(w.kube.kubeconfig());
  return k;
};
const holderOf = (name: string) =>
  w.kube.store.get(LEASES, NAMESPACE, name)?.spec as { holderIdentity?: string; leaseTransitions?: number } | undefined;

describe('leader election on a coordination.k8s.io Lease', () => {
  it('one leader at a time; a standby takes over only after the leader stops renewing for a lease duration', async () => {
    const waiting: string[] = [];
    const lost: string[] = [];
    const elect = (identity: string) =>
      acquireLeaseLeadership(kc(), {
        namespace: NAMESPACE,
        name: 'sched-a',
        identity,
        leaseSeconds: 2,
        renewMs: 300,
        onWaiting: (h) => waiting.push(`${identity} waits for ${h}`),
        onLost: (e) => lost.push(`${identity}: ${e.message}`),
      });
    const a = await elect('replica-a');
    expect(holderOf('sched-a')?.holderIdentity).toBe('replica-a');
    let b: Leadership | null = null;
    const bWon = elect('replica-b').then((l) => {
      b = l;
    });
    await new Promise((r) => setTimeout(r, 2500)); // longer than the lease: renewals keep it with a
    expect(b).toBeNull();
    expect(waiting).toEqual(['replica-b waits for replica-a']);
    const t0 = Date.now();
    a.halt(); // a crashes: no more renewals
    await bWon;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
    expect(holderOf('sched-a')).toMatchObject({ holderIdentity: 'replica-b', leaseTransitions: 1 });
    expect(lost).toEqual([]);
    await b!.release();
    expect(holderOf('sched-a')?.holderIdentity).toBe('');
    // a released lease is taken at once
    const c = await elect('replica-c');
    expect(holderOf('sched-a')?.holderIdentity).toBe('replica-c');
    await c.release();
  });

  it('a leader whose lease is taken learns it at its next renewal (onLost)', async () => {
    const lost: Error[] = [];
    const a = await acquireLeaseLeadership(kc(), {
      namespace: NAMESPACE,
      name: 'sched-b',
      identity: 'replica-a',
      leaseSeconds: 2,
      renewMs: 200,
      onWaiting: () => undefined,
      onLost: (e) => lost.push(e),
    });
    w.kube.store.mutate(LEASES, NAMESPACE, 'sched-b', (l) => {
      (l.spec as { holderIdentity: string }).holderIdentity = 'intruder';
    });
    const e = await eventually(() => lost[0]);
    expect(e.message).toMatch(/lease taken by intruder/);
    a.halt();
  });

  it('two scheduler replicas: only the leader launches; after it dies the other adopts the pod — one pod, one attempt', async () => {
    const started: string[] = [];
    const replica = async (identity: string) => {
      const leadership = await acquireLeaseLeadership(kc(), {
        namespace: NAMESPACE,
        name: 'gpulab-scheduler',
        identity,
        leaseSeconds: 2,
        renewMs: 300,
        onWaiting: () => undefined,
        onLost: () => undefined,
      });
      const launcher = w.makeLauncher();
      const scheduler = w.makeScheduler(launcher);
      await scheduler.recover();
      scheduler.start();
      started.push(identity);
      return { leadership, launcher, scheduler };
    };
    const a = await replica('replica-a');
    let b: Awaited<ReturnType<typeof replica>> | null = null;
    const bStarted = replica('replica-b').then((r) => {
      b = r;
    });
    const id = await w.submit('fake a1=sleep:3000,exit:0 a2=exit:0');
    const name = `gpulab-${id}-1`;
    await eventually(async () =>
      (await w.db.job.findUniqueOrThrow({ where: { id } })).status === 'RUNNING' ? true : undefined,
    );
    expect(started).toEqual(['replica-a']);
    // replica a dies: its loop stops, its lease is no longer renewed, its pod keeps running
    a.leadership.halt();
    await a.scheduler.stop();
    await a.launcher.close();
    await bStarted;
    expect(started).toEqual(['replica-a', 'replica-b']);
    const job = await eventually(async () => {
      const j = await w.db.job.findUniqueOrThrow({ where: { id } });
      return ['SUCCEEDED', 'FAILED'].includes(j.status) ? j : undefined;
    }, 20_000);
    expect(job.status).toBe('SUCCEEDED');
    expect(await w.db.jobAttempt.count({ where: { jobId: id } })).toBe(1);
    const scheduled = w.kube
      .events(NAMESPACE)
      .filter(
        (e) => e.reason === 'Scheduled' && (e.involvedObject as { name: string }).name.startsWith(`gpulab-${id}-`),
      );
    expect(scheduled.map((e) => (e.involvedObject as { name: string }).name)).toEqual([name]);
    // the finished pod is cleaned up by the replica that reported it
    await eventually(() => (w.kube.pods(NAMESPACE).some((p) => p.metadata.name === name) ? undefined : true));
    await (b as unknown as { scheduler: Scheduler }).scheduler.stop();
    await (b as unknown as { leadership: Leadership }).leadership.release();
  });
});

describe("main's composition for GPULAB_LAUNCHER=kubernetes", () => {
  it('reads a kubeconfig file, builds the kubernetes launcher, syncs flavors from node capacity, elects by Lease', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gpulab-kubeconfig-'));
    const file = path.join(dir, 'config');
    w.kube.writeKubeconfig(file);
    const config = loadConfig({
      GPULAB_LAUNCHER: 'kubernetes',
      GPULAB_KUBECONFIG: file,
      GPULAB_KUBE_NAMESPACE: NAMESPACE,
      GPULAB_KUBE_FLAVOR_VALUES: 'ampere=a100',
      GPULAB_KUBE_GPU_TOLERATIONS: 'nvidia.com/gpu, gpulab.dev/dedicated',
      GPULAB_LEADER_LEASE_SECONDS: '3',
      GPULAB_POD_NAME: 'scheduler-0',
    });
    expect(config.leader.election).toBe('lease');
    expect(config.kube.gpuTaints).toEqual(['nvidia.com/gpu', 'gpulab.dev/dedicated']);
    const launcher = buildLauncher(config, { log, clock: () => new Date(), baseEnv: {} });
    expect(launcher.kind).toBe('kubernetes');
    expect(await syncFlavors(w.db, launcher)).toEqual({ ampere: 2, t4: 1 });
    expect(await w.db.flavor.findUniqueOrThrow({ where: { name: 'ampere' } })).toMatchObject({ capacity: 2 });
    expect(await launcher.running()).toEqual([]);
    await launcher.close();
    const leader = await electLeader(config, { log, onLost: () => undefined });
    expect(holderOf('gpulab-scheduler')?.holderIdentity).toBe('scheduler-0');
    await leader.release();
    rmSync(dir, { recursive: true, force: true });
  });
});
