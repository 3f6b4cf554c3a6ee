import type { CoreV1Api, V1Node, V1Pod } from '@kubernetes/client-node';
import { GPU_RESOURCE, LABELS, MANAGED_BY } from './kubernetes-pod';

const FLAVOR_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

export interface CapacitySettings {
  flavorLabel: string;
  /** Flavor → node label value; unmapped label values that are valid flavor names are flavors themselves. */
  flavorValues: Record<string, string>;
  /** Taints our pods tolerate; a node with any other NoSchedule/NoExecute taint cannot take them. */
  gpuTaints: string[];
  /** Subtract GPUs held by pods that are not ours (other tenants of the cluster). Needs cluster-wide pod list. */
  subtractForeignPods: boolean;
}

function gpusOf(pod: V1Pod): number {
  let n = 0;
  for (const c of pod.spec?.containers ?? [])
    n += Number(c.resources?.requests?.[GPU_RESOURCE] ?? c.resources?.limits?.[GPU_RESOURCE] ?? 0);
  return n;
}

function usable(node: V1Node, tolerated: Set<string>): boolean {
  if (node.spec?.unschedulable) return false;
  if (!node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) return false;
  return !(node.spec?.taints ?? []).some(
    (t) => (t.effect === 'NoSchedule' || t.effect === 'NoExecute') && !tolerated.has(t.key),
  );
}

/**
 * GPUs per flavor the cluster can give gpulab: the allocatable `nvidia.com/gpu` of the Ready, schedulable nodes
 * carrying the flavor label (grouped by its value), less the GPUs that other tenants' live pods hold on them. The
 * GPUs our own jobs use are not subtracted here: admission counts them from the database.
 */
export async function clusterCapacity(core: CoreV1Api, s: CapacitySettings): Promise<Record<string, number>> {
  const byValue = new Map(Object.entries(s.flavorValues).map(([flavor, value]) => [value, flavor]));
  const nodes = await core.listNode({ labelSelector: s.flavorLabel });
  const tolerated = new Set(s.gpuTaints);
  const foreign = new Map<string, number>();
  if (s.subtractForeignPods) {
    const pods = await core.listPodForAllNamespaces({ fieldSelector: 'status.phase!=Succeeded,status.phase!=Failed' });
    for (const p of pods.items) {
      const node = p.spec?.nodeName;
      if (!node || p.metadata?.labels?.[LABELS.managedBy] === MANAGED_BY) continue;
      foreign.set(node, (foreign.get(node) ?? 0) + gpusOf(p));
    }
  }
  const out: Record<string, number> = {};
  for (const f of Object.keys(s.flavorValues)) out[f] = 0;
  for (const node of nodes.items) {
    const value = node.metadata?.labels?.[s.flavorLabel];
    if (value === undefined) continue;
    const flavor = byValue.get(value) ?? (FLAVOR_NAME.test(value) ? value : null);
    if (!flavor) continue;
    out[flavor] ??= 0;
    if (!usable(node, tolerated)) continue;
    const allocatable = Number.parseInt(String(node.status?.allocatable?.[GPU_RESOURCE] ?? '0'), 10) || 0;
    out[flavor] += Math.max(0, allocatable - (foreign.get(node.metadata?.name ?? '') ?? 0));
  }
  return out;
}
