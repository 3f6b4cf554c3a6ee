import os from 'node:os';
import path from 'node:path';
import type { Config } from '@gpulab/config';
import type { Db } from '@gpulab/db';
import type { Logger } from '@gpulab/logger';
import { KubeConfig } from '@kubernetes/client-node';
import { KubernetesLauncher } from './launchers/kubernetes';
import type { Launcher } from './launchers/launcher';
import { LocalLauncher } from './launchers/local';
import { acquireLeadership } from './leader';
import { acquireLeaseLeadership } from './leader-lease';

/** Price of a flavor the price table does not have yet (micro-units per GPU-hour); admins set real prices. */
const DEFAULT_RATE_MICROS = 1_000_000n;

/** Kubeconfig from GPULAB_KUBECONFIG, else the client's defaults: KUBECONFIG, ~/.kube/config, in-cluster. */
export function loadKubeConfig(file: string | null): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}

/** The launcher GPULAB_LAUNCHER names, configured from the environment schema. */
export function buildLauncher(
  config: Config,
  o: { log: Logger; clock: () => Date; baseEnv: Record<string, string | undefined> },
): Launcher {
  if (config.launcher === 'local')
    return new LocalLauncher({
      slots: config.local.slots,
      flavor: config.local.flavor,
      command: config.local.trainerCommand,
      cwd: config.local.trainerCwd,
      logDir: path.resolve(config.dataDir, 'logs'),
      baseEnv: o.baseEnv,
      log: o.log,
      clock: o.clock,
    });
  const k = config.kube;
  return new KubernetesLauncher({
    kubeConfig: loadKubeConfig(k.kubeconfig),
    template: {
      namespace: k.namespace,
      image: k.image,
      imagePullPolicy: k.imagePullPolicy,
      command: k.trainerCommand,
      flavorLabel: k.flavorLabel,
      flavorValues: k.flavorValues,
      gpuTaints: k.gpuTaints,
      s3SecretName: k.s3SecretName,
      serviceAccountName: k.serviceAccountName,
      terminationGraceSeconds: Math.ceil(config.scheduler.stopGraceMs / 1000),
      deadlineMarginSeconds: 300,
      cpuPerGpu: k.cpuPerGpu,
      memoryGiBPerGpu: k.memoryGiBPerGpu,
    },
    capacity: { subtractForeignPods: k.subtractForeignPods },
    log: o.log,
    clock: o.clock,
    stuckTimeoutMs: k.imagePullTimeoutMs,
    startTimeoutMs: k.startTimeoutMs,
    finishedPodTtlMs: k.finishedPodTtlMs,
    capacityCacheMs: 5000,
    watch: { minBackoffMs: 500, maxBackoffMs: 30_000, timeoutSeconds: 300 },
  });
}

/** Every flavor the launcher offers gets a price-table row (at a default price) with its current capacity. */
export async function syncFlavors(db: Db, launcher: Launcher): Promise<Record<string, number>> {
  const capacity = await launcher.capacity();
  for (const [name, gpus] of Object.entries(capacity))
    await db.flavor.upsert({
      where: { name },
      create: { name, rateMicros: DEFAULT_RATE_MICROS, capacity: gpus },
      update: { capacity: gpus },
    });
  return capacity;
}

/**
 * Waits until this replica leads: a coordination.k8s.io Lease with the Kubernetes launcher, a Postgres advisory
 * lock otherwise. `onLost` fires if leadership ends while running; the process must exit.
 */
export async function electLeader(
  config: Config,
  o: { log: Logger; onLost: (e: Error) => void },
): Promise<{ release(): Promise<void> }> {
  if (config.leader.election === 'lease') {
    const identity = config.leader.identity ?? os.hostname();
    const leadership = await acquireLeaseLeadership(loadKubeConfig(config.kube.kubeconfig), {
      namespace: config.kube.namespace,
      name: config.leader.leaseName,
      identity,
      leaseSeconds: config.leader.leaseSeconds,
      onWaiting: (holder) => o.log.info({ holder }, 'another scheduler holds the lease; standing by'),
      onLost: o.onLost,
    });
    o.log.info({ lease: config.leader.leaseName, identity }, 'leader lease acquired');
    return leadership;
  }
  const lock = await acquireLeadership(config.databaseUrl, {
    retryMs: 2000,
    onWaiting: () => o.log.info('another scheduler is the leader; standing by'),
    onLost: o.onLost,
  });
  o.log.info('leader lock acquired');
  return lock;
}
