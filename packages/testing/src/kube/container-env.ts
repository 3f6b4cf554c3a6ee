import type { KubeObject } from './objects';
import { ResourceStore } from './store';

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    fieldRef?: { fieldPath: string };
  };
}

export interface EnvFrom {
  prefix?: string;
  secretRef?: { name: string; optional?: boolean };
}

export class ContainerConfigError extends Error {}

function secretData(store: ResourceStore, namespace: string, name: string): Record<string, string> | null {
  const s = store.get(ResourceStore.type('secrets'), namespace, name);
  if (!s) return null;
  const data = (s.data ?? {}) as Record<string, string>;
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

function fieldValue(pod: KubeObject, path: string): string {
  const spec = pod.spec as { nodeName?: string; serviceAccountName?: string };
  const status = (pod.status ?? {}) as { podIP?: string; hostIP?: string };
  const fields: Record<string, string | undefined> = {
    'metadata.name': pod.metadata.name,
    'metadata.namespace': pod.metadata.namespace,
    'metadata.uid': pod.metadata.uid,
    'spec.nodeName': spec.nodeName,
    'spec.serviceAccountName': spec.serviceAccountName,
    'status.podIP': status.podIP,
    'status.hostIP': status.hostIP,
  };
  const label = /^metadata\.labels\['(.+)'\]$/.exec(path);
  if (label) return pod.metadata.labels?.[label[1]!] ?? '';
  if (!(path in fields)) throw new ContainerConfigError(`unsupported fieldPath ${path}`);
  return fields[path] ?? '';
}

/**
 * The environment the kubelet gives a container: `envFrom` secrets first, then `env` entries in order — literal
 * values, `secretKeyRef` (read from the Secrets in the pod's namespace when the container is created) and
 * `fieldRef`. A missing Secret or key fails with the kubelet's CreateContainerConfigError message.
 */
export function resolveContainerEnv(
  store: ResourceStore,
  pod: KubeObject,
  container: { env?: EnvVar[]; envFrom?: EnvFrom[] },
): Record<string, string> {
  const ns = pod.metadata.namespace ?? 'default';
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if (!from.secretRef) throw new ContainerConfigError('only secretRef is supported in envFrom');
    const data = secretData(store, ns, from.secretRef.name);
    if (!data) {
      if (from.secretRef.optional) continue;
      throw new ContainerConfigError(`secret "${from.secretRef.name}" not found`);
    }
    for (const [k, v] of Object.entries(data)) env[`${from.prefix ?? ''}${k}`] = v;
  }
  for (const e of container.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    if (ref) {
      const data = secretData(store, ns, ref.name);
      if (!data) {
        if (ref.optional) continue;
        throw new ContainerConfigError(`secret "${ref.name}" not found`);
      }
      if (!(ref.key in data)) {
        if (ref.optional) continue;
        throw new ContainerConfigError(`couldn't find key ${ref.key} in Secret ${ns}/${ref.name}`);
      }
      env[e.name] = data[ref.key]!;
    } else if (e.valueFrom?.fieldRef) {
      env[e.name] = fieldValue(pod, e.valueFrom.fieldRef.fieldPath);
    } else {
      env[e.name] = (e.value ?? '').replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, k: string) => env[k] ?? m);
    }
  }
  return env;
}
