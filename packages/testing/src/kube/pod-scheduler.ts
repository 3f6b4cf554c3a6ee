import type { KubeObject } from './objects';

export const GPU = 'nvidia.com/gpu';

interface Taint {
  key: string;
  value?: string;
  effect: string;
}
interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
}

export interface PodSpecView {
  nodeName?: string;
  nodeSelector?: Record<string, string>;
  tolerations?: Toleration[];
  containers: Array<{ resources?: { limits?: Record<string, string>; requests?: Record<string, string> } }>;
}

/** GPUs a pod asks for: the containers' `nvidia.com/gpu` requests (which default to their limits). */
export function gpuRequest(pod: KubeObject): number {
  const spec = pod.spec as PodSpecView;
  let n = 0;
  for (const c of spec.containers ?? []) n += Number(c.resources?.requests?.[GPU] ?? c.resources?.limits?.[GPU] ?? 0);
  return n;
}

export function isTerminal(pod: KubeObject): boolean {
  const phase = (pod.status as { phase?: string } | undefined)?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

function tolerates(tolerations: Toleration[], t: Taint): boolean {
  return tolerations.some(
    (tol) =>
      (tol.key === undefined || tol.key === '' ? tol.operator === 'Exists' : tol.key === t.key) &&
      (tol.operator === 'Exists' || (tol.value ?? '') === (t.value ?? '')) &&
      (!tol.effect || tol.effect === t.effect),
  );
}

function isReady(node: KubeObject): boolean {
  const conds = (node.status as { conditions?: Array<{ type: string; status: string }> } | undefined)?.conditions;
  return conds?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/**
 * The default scheduler's filter step for the subset gpulab uses: a Ready, schedulable node whose labels match the
 * pod's nodeSelector, whose NoSchedule/NoExecute taints the pod tolerates, and with enough allocatable GPUs left
 * after the non-terminal pods already bound to it. The first fitting node by name wins; otherwise the message
 * says why each node was rejected, as `FailedScheduling` events do.
 */
export function chooseNode(
  pod: KubeObject,
  nodes: KubeObject[],
  pods: KubeObject[],
): { node: string } | { node: null; message: string } {
  const spec = pod.spec as PodSpecView;
  const want = gpuRequest(pod);
  const reasons = new Map<string, number>();
  const reject = (r: string) => reasons.set(r, (reasons.get(r) ?? 0) + 1);
  for (const node of [...nodes].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const nspec = (node.spec ?? {}) as { unschedulable?: boolean; taints?: Taint[] };
    if (!isReady(node)) {
      reject('node(s) had untolerated taint {node.kubernetes.io/not-ready: }');
      continue;
    }
    if (nspec.unschedulable) {
      reject('node(s) were unschedulable');
      continue;
    }
    const labels = node.metadata.labels ?? {};
    if (!Object.entries(spec.nodeSelector ?? {}).every(([k, v]) => labels[k] === v)) {
      reject("node(s) didn't match Pod's node affinity/selector");
      continue;
    }
    const untolerated = (nspec.taints ?? []).find(
      (t) => (t.effect === 'NoSchedule' || t.effect === 'NoExecute') && !tolerates(spec.tolerations ?? [], t),
    );
    if (untolerated) {
      reject(`node(s) had untolerated taint {${untolerated.key}: ${untolerated.value ?? ''}}`);
      continue;
    }
    const allocatable = Number(
      (node.status as { allocatable?: Record<string, string> } | undefined)?.allocatable?.[GPU] ?? 0,
    );
    const used = pods
      .filter((p) => (p.spec as PodSpecView).nodeName === node.metadata.name && !isTerminal(p))
      .reduce((a, p) => a + gpuRequest(p), 0);
    if (want > allocatable - used) {
      reject(`Insufficient ${GPU}`);
      continue;
    }
    return { node: node.metadata.name };
  }
  const parts = [...reasons.entries()].map(([r, n]) => `${n} ${r}`);
  return {
    node: null,
    message: `0/${nodes.length} nodes are available${parts.length ? `: ${parts.join(', ')}` : ''}.`,
  };
}
