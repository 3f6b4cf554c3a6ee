import type { V1EnvVar, V1Pod, V1Secret, V1Toleration } from '@kubernetes/client-node';
import type { LaunchRequest } from './launcher';

/** Labels every gpulab trainer pod carries; the watcher selects on MANAGED_BY. */
export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  name: 'app.kubernetes.io/name',
  job: 'gpulab.dev/job',
  attempt: 'gpulab.dev/attempt',
  user: 'gpulab.dev/user',
  flavor: 'gpulab.dev/flavor',
} as const;
export const MANAGED_BY = 'gpulab';
export const POD_SELECTOR = `${LABELS.managedBy}=${MANAGED_BY},${LABELS.name}=gpulab-trainer`;
export const TRAINER_CONTAINER = 'trainer';
export const GPU_RESOURCE = 'nvidia.com/gpu';

/** Variables that never appear as plain values in a pod spec: they come from Secrets. */
export const SECRET_ENV = ['GPULAB_JOB_TOKEN', 'GPULAB_S3_ACCESS_KEY_ID', 'GPULAB_S3_SECRET_ACCESS_KEY'] as const;
const S3_SECRET_ENV = new Set<string>(['GPULAB_S3_ACCESS_KEY_ID', 'GPULAB_S3_SECRET_ACCESS_KEY']);

export interface PodTemplate {
  namespace: string;
  image: string;
  imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** Overrides the image's entrypoint when set. */
  command: string[] | null;
  /** Node label whose value names the GPU type, e.g. `gpulab.dev/flavor` or `nvidia.com/gpu.product`. */
  flavorLabel: string;
  /** Flavor → value of `flavorLabel` on its nodes; a flavor missing here uses its own name. */
  flavorValues: Record<string, string>;
  /** Taint keys of GPU nodes the trainer tolerates (operator Exists, effect NoSchedule). */
  gpuTaints: string[];
  /** Secret holding GPULAB_S3_ACCESS_KEY_ID and GPULAB_S3_SECRET_ACCESS_KEY; null: they go into the attempt's Secret. */
  s3SecretName: string | null;
  serviceAccountName: string | null;
  /** SIGTERM → SIGKILL time: long enough to write a checkpoint. */
  terminationGraceSeconds: number;
  /** activeDeadlineSeconds = max runtime + grace + this margin: a backstop; the scheduler stops jobs before. */
  deadlineMarginSeconds: number;
  cpuPerGpu: number | null;
  memoryGiBPerGpu: number | null;
}

export function attemptLabels(req: LaunchRequest): Record<string, string> {
  return {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.name]: 'gpulab-trainer',
    [LABELS.job]: req.jobId,
    [LABELS.attempt]: String(req.attempt),
    [LABELS.flavor]: req.flavor,
    ...(req.userId ? { [LABELS.user]: req.userId } : {}),
  };
}

/**
 * The attempt's Secret (same name as its pod): the job-scoped token, and the S3 credentials when no shared S3
 * Secret is configured. Kept out of the pod spec so that reading pods does not reveal them.
 */
export function attemptSecret(t: PodTemplate, req: LaunchRequest): V1Secret {
  const data: Record<string, string> = {};
  for (const k of SECRET_ENV) {
    if (t.s3SecretName && S3_SECRET_ENV.has(k)) continue;
    const v = req.env[k];
    if (v !== undefined && v !== '') data[k] = v;
  }
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: req.name, namespace: t.namespace, labels: attemptLabels(req) },
    type: 'Opaque',
    stringData: data,
  };
}

function env(t: PodTemplate, req: LaunchRequest): V1EnvVar[] {
  const out: V1EnvVar[] = [];
  for (const [name, value] of Object.entries(req.env).sort(([a], [b]) => a.localeCompare(b))) {
    if ((SECRET_ENV as readonly string[]).includes(name)) continue;
    out.push({ name, value });
  }
  for (const name of SECRET_ENV) {
    const shared = t.s3SecretName && S3_SECRET_ENV.has(name);
    if (!shared && !req.env[name]) continue;
    out.push({
      name,
      valueFrom: { secretKeyRef: { name: shared ? t.s3SecretName! : req.name, key: name } },
    });
  }
  out.push({ name: 'GPULAB_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
  return out;
}

/**
 * The pod of one attempt: deterministic name, gpulab labels, `nvidia.com/gpu` limits, a nodeSelector for the
 * flavor, GPU-taint tolerations, env (secrets by reference), restartPolicy Never (a retry is a new attempt, resumed
 * from the checkpoint), a grace period to checkpoint on SIGTERM, and activeDeadlineSeconds from the max runtime.
 */
export function attemptPod(t: PodTemplate, req: LaunchRequest): V1Pod {
  const tolerations: V1Toleration[] = t.gpuTaints.map((key) => ({ key, operator: 'Exists', effect: 'NoSchedule' }));
  const limits: Record<string, string> = { [GPU_RESOURCE]: String(req.gpus) };
  const requests: Record<string, string> = { [GPU_RESOURCE]: String(req.gpus) };
  if (t.cpuPerGpu) requests.cpu = String(t.cpuPerGpu * req.gpus);
  if (t.memoryGiBPerGpu) {
    requests.memory = `${t.memoryGiBPerGpu * req.gpus}Gi`;
    limits.memory = requests.memory;
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: req.name,
      namespace: t.namespace,
      labels: attemptLabels(req),
      annotations: { 'gpulab.dev/launched-by': 'gpulab-scheduler' },
    },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: t.terminationGraceSeconds,
      ...(req.maxRuntimeSeconds
        ? { activeDeadlineSeconds: req.maxRuntimeSeconds + t.terminationGraceSeconds + t.deadlineMarginSeconds }
        : {}),
      nodeSelector: { [t.flavorLabel]: t.flavorValues[req.flavor] ?? req.flavor },
      tolerations,
      ...(t.serviceAccountName ? { serviceAccountName: t.serviceAccountName } : {}),
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: TRAINER_CONTAINER,
          image: t.image,
          imagePullPolicy: t.imagePullPolicy,
          ...(t.command?.length ? { command: t.command } : {}),
          env: env(t, req),
          resources: { limits, requests },
          securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
}

/** jobId and attempt from a pod's labels; null for pods that are not gpulab attempts. */
export function attemptOf(pod: V1Pod): { jobId: string; attempt: number } | null {
  const labels = pod.metadata?.labels ?? {};
  const jobId = labels[LABELS.job];
  const attempt = Number(labels[LABELS.attempt]);
  if (!jobId || !Number.isInteger(attempt) || attempt < 1) return null;
  return { jobId, attempt };
}
