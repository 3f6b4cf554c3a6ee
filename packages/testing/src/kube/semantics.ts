import type { KubeObject, StatusCause } from './objects';

/**
 * The checks a real API server makes beyond the OpenAPI schema (which kubernetes-models enforces): object and
 * container names, label keys and values, and the pod rules a launcher can get wrong (extended resources, env,
 * restart policy, tolerations). Returns every violation, as `Status.details.causes`.
 */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const QUANTITY_INT = /^\d+$/;

export function checkName(name: unknown, field = 'metadata.name'): StatusCause[] {
  if (typeof name !== 'string' || !name) return [{ field, message: 'Required value: name is required' }];
  if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name))
    return [
      {
        field,
        message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
      },
    ];
  return [];
}

function checkLabelKey(key: string, field: string): StatusCause[] {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : null;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  const out: StatusCause[] = [];
  if (prefix !== null && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)))
    out.push({ field, message: `Invalid value: "${key}": prefix part must be a DNS-1123 subdomain` });
  if (name.length > 63 || !LABEL_NAME.test(name))
    out.push({ field, message: `Invalid value: "${key}": name part must be 63 characters or less and alphanumeric` });
  return out;
}

export function checkLabels(labels: unknown, field: string): StatusCause[] {
  if (labels === undefined || labels === null) return [];
  const out: StatusCause[] = [];
  for (const [k, v] of Object.entries(labels as Record<string, unknown>)) {
    out.push(...checkLabelKey(k, field));
    if (typeof v !== 'string' || v.length > 63 || (v !== '' && !LABEL_NAME.test(v)))
      out.push({
        field: `${field}[${k}]`,
        message: `Invalid value: "${String(v)}": a valid label must be an empty string or consist of at most 63 alphanumeric characters, '-', '_' or '.'`,
      });
  }
  return out;
}

export function checkMetadata(obj: KubeObject): StatusCause[] {
  return [...checkName(obj.metadata?.name), ...checkLabels(obj.metadata?.labels, 'metadata.labels')];
}

interface Container {
  name?: string;
  image?: string;
  env?: Array<{ name?: string; value?: string; valueFrom?: Record<string, unknown> }>;
  resources?: { limits?: Record<string, unknown>; requests?: Record<string, unknown> };
}

function isExtendedResource(name: string): boolean {
  return name.includes('/') && !name.startsWith('kubernetes.io/') && !name.startsWith('requests.');
}

function checkContainer(c: Container, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  if (!c.name || !DNS1123_LABEL.test(c.name) || c.name.length > 63)
    out.push({ field: `${field}.name`, message: `Invalid value: "${c.name}": must be a DNS-1123 label` });
  if (!c.image) out.push({ field: `${field}.image`, message: 'Required value' });
  for (const [i, e] of (c.env ?? []).entries()) {
    const f = `${field}.env[${i}]`;
    if (!e.name || !ENV_NAME.test(e.name))
      out.push({ field: `${f}.name`, message: `Invalid value: "${e.name}": a valid environment variable name` });
    if (e.value !== undefined && e.value !== '' && e.valueFrom)
      out.push({ field: `${f}.valueFrom`, message: 'Invalid value: may not be specified when `value` is not empty' });
    if (e.valueFrom && Object.keys(e.valueFrom).length !== 1)
      out.push({ field: `${f}.valueFrom`, message: 'Invalid value: may not have more than one field specified' });
  }
  const limits = c.resources?.limits ?? {};
  const requests = c.resources?.requests ?? {};
  for (const name of new Set([...Object.keys(limits), ...Object.keys(requests)])) {
    if (!isExtendedResource(name)) continue;
    const f = `${field}.resources`;
    for (const [kind, q] of [
      ['limits', limits[name]],
      ['requests', requests[name]],
    ] as const) {
      if (q !== undefined && !QUANTITY_INT.test(String(q)))
        out.push({ field: `${f}.${kind}[${name}]`, message: `Invalid value: "${q}": must be an integer` });
    }
    if (requests[name] !== undefined && limits[name] === undefined)
      out.push({ field: `${f}.limits`, message: `Required value: Limit must be set for non overcommitable resources` });
    if (requests[name] !== undefined && limits[name] !== undefined && String(requests[name]) !== String(limits[name]))
      out.push({
        field: `${f}.requests[${name}]`,
        message: `Invalid value: "${requests[name]}": must be equal to ${name} limit of ${limits[name]}`,
      });
  }
  return out;
}

/** Pod rules on create (pods are immutable here: no updates to validate). */
export function checkPod(pod: KubeObject): StatusCause[] {
  const spec = (pod.spec ?? {}) as {
    containers?: Container[];
    initContainers?: Container[];
    restartPolicy?: string;
    activeDeadlineSeconds?: number;
    terminationGracePeriodSeconds?: number;
    nodeSelector?: Record<string, string>;
    tolerations?: Array<{ key?: string; operator?: string; value?: string; effect?: string }>;
  };
  const out: StatusCause[] = [];
  const names = new Set<string>();
  for (const [i, c] of (spec.containers ?? []).entries()) {
    out.push(...checkContainer(c, `spec.containers[${i}]`));
    if (c.name && names.has(c.name))
      out.push({ field: `spec.containers[${i}].name`, message: `Duplicate value: "${c.name}"` });
    if (c.name) names.add(c.name);
  }
  if (!spec.containers?.length) out.push({ field: 'spec.containers', message: 'Required value' });
  if (spec.restartPolicy !== undefined && !['Always', 'OnFailure', 'Never'].includes(spec.restartPolicy))
    out.push({ field: 'spec.restartPolicy', message: `Unsupported value: "${spec.restartPolicy}"` });
  if (spec.activeDeadlineSeconds !== undefined && !(spec.activeDeadlineSeconds > 0))
    out.push({ field: 'spec.activeDeadlineSeconds', message: 'Invalid value: must be greater than 0' });
  if (spec.terminationGracePeriodSeconds !== undefined && spec.terminationGracePeriodSeconds < 0)
    out.push({ field: 'spec.terminationGracePeriodSeconds', message: 'Invalid value: must be >= 0' });
  out.push(...checkLabels(spec.nodeSelector, 'spec.nodeSelector'));
  for (const [i, t] of (spec.tolerations ?? []).entries()) {
    const f = `spec.tolerations[${i}]`;
    if (t.operator !== undefined && !['Exists', 'Equal'].includes(t.operator))
      out.push({ field: `${f}.operator`, message: `Unsupported value: "${t.operator}"` });
    if (t.operator === 'Exists' && t.value)
      out.push({ field: `${f}.operator`, message: 'Invalid value: value must be empty when `operator` is Exists' });
    if (t.effect && !['NoSchedule', 'PreferNoSchedule', 'NoExecute'].includes(t.effect))
      out.push({ field: `${f}.effect`, message: `Unsupported value: "${t.effect}"` });
  }
  return out;
}

/** Lease rules: durations are positive. */
export function checkLease(lease: KubeObject): StatusCause[] {
  const spec = (lease.spec ?? {}) as { leaseDurationSeconds?: number };
  if (spec.leaseDurationSeconds !== undefined && !(spec.leaseDurationSeconds > 0))
    return [{ field: 'spec.leaseDurationSeconds', message: 'Invalid value: must be greater than 0' }];
  return [];
}

/**
 * The server-side rules for any manifest: its metadata, and for workloads (Deployment, StatefulSet, DaemonSet, Job)
 * the pod template's labels and pod rules as the API server checks them on create.
 */
export function checkManifest(obj: KubeObject): StatusCause[] {
  const out = checkMetadata(obj);
  if (obj.kind === 'Pod') out.push(...checkPod(obj));
  const template = (obj.spec as { template?: { metadata?: { labels?: unknown }; spec?: unknown } } | undefined)
    ?.template;
  if (template && ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'ReplicaSet'].includes(String(obj.kind))) {
    out.push(...checkLabels(template.metadata?.labels, 'spec.template.metadata.labels'));
    out.push(
      ...checkPod({ metadata: { name: obj.metadata.name }, spec: template.spec }).map((c) => ({
        ...c,
        field: `spec.template.${c.field}`,
      })),
    );
  }
  return out;
}
