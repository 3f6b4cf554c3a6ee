/**
 * Plain JSON shapes the test Kubernetes API server stores and serves, and the `Status` errors it answers with —
 * the same documents a real API server sends (`kind: Status`, `reason`, `code`), so the real client parses them.
 */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  generateName?: string;
  [k: string]: unknown;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [k: string]: unknown;
}

/** A resource the server knows: its URL plural, kind, apiVersion and whether it lives in a namespace. */
export interface ResourceType {
  plural: string;
  kind: string;
  group: string;
  version: string;
  namespaced: boolean;
}

export const RESOURCES: readonly ResourceType[] = [
  { plural: 'pods', kind: 'Pod', group: '', version: 'v1', namespaced: true },
  { plural: 'secrets', kind: 'Secret', group: '', version: 'v1', namespaced: true },
  { plural: 'events', kind: 'Event', group: '', version: 'v1', namespaced: true },
  { plural: 'nodes', kind: 'Node', group: '', version: 'v1', namespaced: false },
  { plural: 'leases', kind: 'Lease', group: 'coordination.k8s.io', version: 'v1', namespaced: true },
];

export function apiVersionOf(t: ResourceType): string {
  return t.group ? `${t.group}/${t.version}` : t.version;
}

/** The qualified resource name real servers use in messages: `pods`, `leases.coordination.k8s.io`. */
export function qualifiedName(t: ResourceType): string {
  return t.group ? `${t.plural}.${t.group}` : t.plural;
}

export interface StatusCause {
  reason?: string;
  message: string;
  field?: string;
}

/** An API error: becomes a `Status` document with this HTTP code. */
export class KubeApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: { name?: string; group?: string; kind?: string; causes?: StatusCause[] },
  ) {
    super(message);
  }

  toStatus(): Record<string, unknown> {
    return statusObject(this.code, this.reason, this.message, this.details);
  }
}

export function statusObject(
  code: number,
  reason: string,
  message: string,
  details?: Record<string, unknown>,
): Record<string, unknown> {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: code < 400 ? 'Success' : 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}

export function notFound(t: ResourceType, name: string): KubeApiError {
  return new KubeApiError(404, 'NotFound', `${qualifiedName(t)} "${name}" not found`, {
    name,
    group: t.group,
    kind: t.plural,
  });
}

export function alreadyExists(t: ResourceType, name: string): KubeApiError {
  return new KubeApiError(409, 'AlreadyExists', `${qualifiedName(t)} "${name}" already exists`, {
    name,
    group: t.group,
    kind: t.plural,
  });
}

export function conflict(t: ResourceType, name: string): KubeApiError {
  return new KubeApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualifiedName(t)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group: t.group, kind: t.plural },
  );
}

export function invalid(t: ResourceType, name: string, causes: StatusCause[]): KubeApiError {
  const what = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join(', ');
  return new KubeApiError(422, 'Invalid', `${t.kind} "${name}" is invalid: ${what}`, {
    name,
    group: t.group,
    kind: t.kind,
    causes: causes.map((c) => ({ reason: c.reason ?? 'FieldValueInvalid', message: c.message, field: c.field })),
  });
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}
