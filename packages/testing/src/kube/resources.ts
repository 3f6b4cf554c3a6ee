import { randomBytes } from 'node:crypto';
import {
  apiVersionOf,
  clone,
  invalid,
  KubeApiError,
  type KubeObject,
  notFound,
  type ResourceType,
  type StatusCause,
  statusObject,
} from './objects';
import { isTerminal } from './pod-scheduler';
import { checkLease, checkMetadata, checkPod } from './semantics';
import type { ResourceStore } from './store';
import { validateSchema } from './validate';

/**
 * What the API server does with a write before storing it, per resource: the kind and apiVersion must match the
 * URL, the namespace in the body must match the request's, the document must pass the OpenAPI schema
 * (kubernetes-models) and the server's own rules, and defaults are applied (pod spec defaults and a Pending status;
 * a Secret's stringData folded into base64 data). Invalid documents are 422 `Invalid` with causes, like a real server.
 */
export async function admitWrite(
  t: ResourceType,
  body: unknown,
  namespace: string | undefined,
  urlName?: string,
): Promise<KubeObject> {
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw new KubeApiError(400, 'BadRequest', 'the body of the request was in an unknown format');
  const obj = clone(body) as KubeObject;
  obj.apiVersion ??= apiVersionOf(t);
  obj.kind ??= t.kind;
  if (obj.apiVersion !== apiVersionOf(t) || obj.kind !== t.kind)
    throw new KubeApiError(
      400,
      'BadRequest',
      `the API version in the data (${obj.apiVersion}) does not match the expected API version (${apiVersionOf(t)})`,
    );
  obj.metadata ??= { name: '' };
  if (!obj.metadata.name && obj.metadata.generateName)
    obj.metadata.name = `${obj.metadata.generateName}${randomBytes(3).toString('hex').slice(0, 5)}`;
  if (urlName !== undefined && obj.metadata.name !== urlName)
    throw new KubeApiError(400, 'BadRequest', 'the name of the object does not match the name on the URL');
  if (t.namespaced) {
    if (obj.metadata.namespace && obj.metadata.namespace !== namespace)
      throw new KubeApiError(
        400,
        'BadRequest',
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    obj.metadata.namespace = namespace;
  }
  if (t.kind === 'Secret') foldStringData(obj);
  const causes: StatusCause[] = [];
  const schema = await validateSchema(obj);
  if (!schema.ok) causes.push(...(schema.causes.length ? schema.causes : [{ message: schema.message ?? 'invalid' }]));
  causes.push(...checkMetadata(obj));
  if (t.kind === 'Pod') causes.push(...checkPod(obj));
  if (t.kind === 'Lease') causes.push(...checkLease(obj));
  if (causes.length) throw invalid(t, obj.metadata.name, causes);
  if (t.kind === 'Pod') defaultPod(obj);
  return obj;
}

function foldStringData(obj: KubeObject): void {
  const data = { ...((obj.data ?? {}) as Record<string, string>) };
  for (const [k, v] of Object.entries((obj.stringData ?? {}) as Record<string, string>))
    data[k] = Buffer.from(String(v), 'utf8').toString('base64');
  for (const [k, v] of Object.entries(data))
    if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v))
      throw invalid(
        { plural: 'secrets', kind: 'Secret', group: '', version: 'v1', namespaced: true },
        obj.metadata.name,
        [{ field: `data[${k}]`, message: 'Invalid value: illegal base64 data' }],
      );
  obj.data = data;
  delete obj.stringData;
}

function defaultPod(pod: KubeObject): void {
  const spec = pod.spec as Record<string, unknown> & { containers: Array<Record<string, unknown>> };
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.serviceAccountName ??= 'default';
  spec.enableServiceLinks ??= true;
  for (const c of spec.containers) {
    c.terminationMessagePath ??= '/dev/termination-log';
    c.terminationMessagePolicy ??= 'File';
    c.imagePullPolicy ??=
      String(c.image).endsWith(':latest') || !String(c.image).includes(':') ? 'Always' : 'IfNotPresent';
    c.resources ??= {};
    const res = c.resources as { limits?: Record<string, string>; requests?: Record<string, string> };
    // requests default to limits, as the API server does
    if (res.limits) res.requests = { ...res.limits, ...res.requests };
  }
  pod.status = { phase: 'Pending', qosClass: 'BestEffort' };
}

/**
 * DELETE semantics. A pod that is bound to a node and not finished is deleted gracefully: it gets a
 * deletionTimestamp and grace period (the kubelet then stops it and removes it); an unbound or finished pod, or a
 * grace period of 0, is removed at once. Other resources are removed at once and answered with a Success Status.
 */
export function deleteObject(
  store: ResourceStore,
  t: ResourceType,
  namespace: string | undefined,
  name: string,
  gracePeriodSeconds: number | undefined,
): Record<string, unknown> {
  const cur = store.get(t, namespace, name);
  if (!cur) throw notFound(t, name);
  if (t.kind !== 'Pod') {
    store.remove(t, namespace, name);
    return statusObject(200, '', '', { name, group: t.group, kind: t.plural, uid: cur.metadata.uid });
  }
  const spec = cur.spec as { nodeName?: string; terminationGracePeriodSeconds?: number };
  const grace = gracePeriodSeconds ?? spec.terminationGracePeriodSeconds ?? 30;
  if (grace <= 0 || !spec.nodeName || isTerminal(cur)) return store.remove(t, namespace, name)!;
  if (cur.metadata.deletionTimestamp) return cur;
  return store.mutate(t, namespace, name, (p) => {
    p.metadata.deletionTimestamp = new Date(Date.parse(store.now()) + grace * 1000)
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z');
    p.metadata.deletionGracePeriodSeconds = grace;
  })!;
}
