import { randomUUID } from 'node:crypto';
import type { LabelSelector } from './label-selector';
import {
  alreadyExists,
  apiVersionOf,
  clone,
  conflict,
  type KubeObject,
  notFound,
  RESOURCES,
  type ResourceType,
} from './objects';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: WatchEventType;
  resource: ResourceType;
  object: KubeObject;
  rv: number;
}

export interface WatchFilter {
  resource: ResourceType;
  namespace?: string | undefined;
  labels: LabelSelector;
  fields: (o: Record<string, unknown>) => boolean;
}

/** How far back watches can resume: the server keeps this many events, like etcd's compaction window. */
const HISTORY_LIMIT = 2000;

/**
 * The API server's storage: objects by resource, namespace and name, with one cluster-wide resourceVersion counter
 * (etcd's revision). Every write bumps it and appends an event to a bounded history, so a watch can resume from any
 * resourceVersion still in the window and is told 410 Gone (Expired) for older ones. `compact()` drops the history
 * on purpose, as etcd compaction does.
 */
export class ResourceStore {
  private revision = 0;
  private compactedRevision = 0;
  private readonly objects = new Map<string, Map<string, KubeObject>>();
  private history: StoreEvent[] = [];
  private readonly listeners = new Set<(e: StoreEvent) => void>();

  constructor(private readonly clock: () => Date = () => new Date()) {}

  get resourceVersion(): string {
    return String(this.revision);
  }

  /** The oldest resourceVersion a watch may still start from. */
  get oldestResumable(): number {
    return this.compactedRevision;
  }

  static type(plural: string): ResourceType {
    const t = RESOURCES.find((r) => r.plural === plural);
    if (!t) throw new Error(`unknown resource ${plural}`);
    return t;
  }

  private bucket(t: ResourceType): Map<string, KubeObject> {
    let b = this.objects.get(t.plural);
    if (!b) {
      b = new Map();
      this.objects.set(t.plural, b);
    }
    return b;
  }

  private key(t: ResourceType, namespace: string | undefined, name: string): string {
    return t.namespaced ? `${namespace ?? 'default'}/${name}` : name;
  }

  get(t: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const o = this.bucket(t).get(this.key(t, namespace, name));
    return o ? clone(o) : undefined;
  }

  mustGet(t: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const o = this.get(t, namespace, name);
    if (!o) throw notFound(t, name);
    return o;
  }

  list(t: ResourceType, namespace?: string, matches: (o: KubeObject) => boolean = () => true): KubeObject[] {
    const out: KubeObject[] = [];
    for (const o of this.bucket(t).values()) {
      if (t.namespaced && namespace !== undefined && o.metadata.namespace !== namespace) continue;
      if (matches(o)) out.push(clone(o));
    }
    return out.sort((a, b) =>
      this.key(t, a.metadata.namespace, a.metadata.name).localeCompare(
        this.key(t, b.metadata.namespace, b.metadata.name),
      ),
    );
  }

  /** Stores a new object: uid, creationTimestamp, resourceVersion; 409 AlreadyExists if the name is taken. */
  create(t: ResourceType, obj: KubeObject): KubeObject {
    const b = this.bucket(t);
    const k = this.key(t, obj.metadata.namespace, obj.metadata.name);
    if (b.has(k)) throw alreadyExists(t, obj.metadata.name);
    const o = clone(obj);
    o.apiVersion = apiVersionOf(t);
    o.kind = t.kind;
    o.metadata = {
      ...o.metadata,
      ...(t.namespaced ? { namespace: obj.metadata.namespace ?? 'default' } : {}),
      uid: randomUUID(),
      creationTimestamp: this.now(),
    };
    delete o.metadata.deletionTimestamp;
    return this.commit('ADDED', t, k, o);
  }

  /**
   * Replaces an object (PUT): a resourceVersion in the body must match the stored one (optimistic concurrency,
   * else 409 Conflict); uid and creationTimestamp are kept.
   */
  replace(t: ResourceType, obj: KubeObject): KubeObject {
    const b = this.bucket(t);
    const k = this.key(t, obj.metadata.namespace, obj.metadata.name);
    const cur = b.get(k);
    if (!cur) throw notFound(t, obj.metadata.name);
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== cur.metadata.resourceVersion) throw conflict(t, obj.metadata.name);
    const o = clone(obj);
    o.apiVersion = apiVersionOf(t);
    o.kind = t.kind;
    o.metadata = {
      ...o.metadata,
      namespace: cur.metadata.namespace,
      uid: cur.metadata.uid,
      creationTimestamp: cur.metadata.creationTimestamp,
      ...(cur.metadata.deletionTimestamp ? { deletionTimestamp: cur.metadata.deletionTimestamp } : {}),
    };
    if (!t.namespaced) delete o.metadata.namespace;
    return this.commit('MODIFIED', t, k, o);
  }

  /** A server-side change (the kubelet's status updates, graceful deletion marks): `fn` edits a copy. */
  mutate(
    t: ResourceType,
    namespace: string | undefined,
    name: string,
    fn: (o: KubeObject) => void,
  ): KubeObject | undefined {
    const k = this.key(t, namespace, name);
    const cur = this.bucket(t).get(k);
    if (!cur) return undefined;
    const o = clone(cur);
    fn(o);
    return this.commit('MODIFIED', t, k, o);
  }

  /** Removes the object for good; the DELETED event carries its last state with a new resourceVersion. */
  remove(t: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const b = this.bucket(t);
    const k = this.key(t, namespace, name);
    const cur = b.get(k);
    if (!cur) return undefined;
    b.delete(k);
    const o = clone(cur);
    this.revision++;
    o.metadata.resourceVersion = String(this.revision);
    this.emit({ type: 'DELETED', resource: t, object: o, rv: this.revision });
    return clone(o);
  }

  private commit(type: WatchEventType, t: ResourceType, k: string, o: KubeObject): KubeObject {
    this.revision++;
    o.metadata.resourceVersion = String(this.revision);
    this.bucket(t).set(k, o);
    this.emit({ type, resource: t, object: clone(o), rv: this.revision });
    return clone(o);
  }

  private emit(e: StoreEvent): void {
    this.history.push(e);
    if (this.history.length > HISTORY_LIMIT) {
      const dropped = this.history.splice(0, this.history.length - HISTORY_LIMIT);
      this.compactedRevision = dropped.at(-1)!.rv;
    }
    for (const l of [...this.listeners]) l(e);
  }

  /** Forgets every past event: a watch from any resourceVersion before now gets 410 Gone. */
  compact(): void {
    this.compactedRevision = this.revision;
    this.history = [];
  }

  /** Events after `rv` that match, or null when `rv` is older than the retained history (410 Gone). */
  since(rv: number, filter: WatchFilter): StoreEvent[] | null {
    if (rv < this.compactedRevision) return null;
    return this.history.filter((e) => e.rv > rv && matches(filter, e));
  }

  /** Internal subscription (the kubelet, watch streams); returns an unsubscribe function. */
  subscribe(fn: (e: StoreEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  now(): string {
    return this.clock()
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z');
  }
}

export function matches(f: WatchFilter, e: StoreEvent): boolean {
  if (e.resource.plural !== f.resource.plural) return false;
  if (f.resource.namespaced && f.namespace !== undefined && e.object.metadata.namespace !== f.namespace) return false;
  return f.labels(e.object.metadata.labels) && f.fields(e.object);
}
