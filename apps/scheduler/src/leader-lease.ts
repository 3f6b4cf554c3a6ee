import { ApiException, CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';

export interface LeaseElectionOptions {
  namespace: string;
  name: string;
  /** This replica's identity (its pod name). */
  identity: string;
  /** How long a lease is valid without renewal; a standby takes over this long after the leader stops renewing. */
  leaseSeconds: number;
  /** How often the leader renews (default a third of the lease) and a standby retries. */
  renewMs?: number;
  retryMs?: number;
  onWaiting: (holder: string) => void;
  /** The lease could not be renewed in time or was taken: stop scheduling at once (exit). */
  onLost: (e: Error) => void;
  signal?: AbortSignal;
}

export interface Leadership {
  release(): Promise<void>;
  /** Stops renewing without giving the lease up, as a crashed replica would; the lease then expires. */
  halt(): void;
}

function isStatus(e: unknown, code: number): boolean {
  return e instanceof ApiException && e.code === code;
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: a replica takes the
 * lease when it is free or expired, with a compare-and-swap on the Lease's resourceVersion (a 409 Conflict means
 * another replica won), and renews it every `renewMs`. Expiry is judged by this replica's own clock — the record
 * must not have changed for a whole lease duration since we first saw it — so clock skew between replicas does
 * not matter. A leader that cannot renew before its lease would expire reports `onLost` and must stop.
 */
export async function acquireLeaseLeadership(kc: KubeConfig, o: LeaseElectionOptions): Promise<Leadership> {
  const api = kc.makeApiClient(CoordinationV1Api);
  const renewMs = o.renewMs ?? Math.max(200, Math.floor((o.leaseSeconds * 1000) / 3));
  const retryMs = o.retryMs ?? renewMs;
  let observed: { rv: string; at: number } | null = null;
  let warnedFor = '';

  const read = async (): Promise<V1Lease | null> => {
    try {
      return await api.readNamespacedLease({ name: o.name, namespace: o.namespace });
    } catch (e) {
      if (isStatus(e, 404)) return null;
      throw e;
    }
  };

  /** One attempt to take or renew the lease; true when we hold it afterwards. */
  const tryAcquireOrRenew = async (): Promise<boolean> => {
    const now = new Date();
    const cur = await read();
    if (!cur) {
      try {
        await api.createNamespacedLease({
          namespace: o.namespace,
          body: {
            metadata: { name: o.name, namespace: o.namespace },
            spec: {
              holderIdentity: o.identity,
              leaseDurationSeconds: o.leaseSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        return true;
      } catch (e) {
        if (isStatus(e, 409)) return false;
        throw e;
      }
    }
    const rv = cur.metadata?.resourceVersion ?? '';
    if (observed?.rv !== rv) observed = { rv, at: Date.now() };
    const holder = cur.spec?.holderIdentity ?? '';
    const duration = (cur.spec?.leaseDurationSeconds ?? o.leaseSeconds) * 1000;
    const mine = holder === o.identity;
    if (holder && !mine && Date.now() - observed.at < duration) {
      if (warnedFor !== holder) o.onWaiting(holder);
      warnedFor = holder;
      return false;
    }
    const spec = cur.spec ?? {};
    try {
      await api.replaceNamespacedLease({
        name: o.name,
        namespace: o.namespace,
        body: {
          ...cur,
          spec: {
            ...spec,
            holderIdentity: o.identity,
            leaseDurationSeconds: o.leaseSeconds,
            renewTime: now,
            ...(mine ? {} : { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }),
          },
        },
      });
      return true;
    } catch (e) {
      if (isStatus(e, 409)) return false;
      throw e;
    }
  };

  for (;;) {
    if (o.signal?.aborted) throw new Error('aborted while waiting for leadership');
    const ok = await tryAcquireOrRenew().catch(() => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, retryMs));
  }

  let stopped = false;
  let lastRenew = Date.now();
  let timer: NodeJS.Timeout | null = null;
  const renew = async () => {
    if (stopped) return;
    let ok = false;
    let err: unknown = null;
    try {
      ok = await tryAcquireOrRenew();
    } catch (e) {
      err = e;
    }
    if (stopped) return;
    if (ok) lastRenew = Date.now();
    else {
      const cur = await read().catch(() => null);
      const taken = cur?.spec?.holderIdentity && cur.spec.holderIdentity !== o.identity;
      // keep trying while the lease we hold is still valid; give up when it is taken or about to expire
      if (taken || Date.now() - lastRenew > o.leaseSeconds * 1000 - renewMs) {
        stopped = true;
        o.onLost(
          new Error(taken ? `lease taken by ${cur?.spec?.holderIdentity}` : `lease not renewed: ${String(err)}`),
        );
        return;
      }
    }
    timer = setTimeout(() => void renew(), renewMs);
  };
  timer = setTimeout(() => void renew(), renewMs);

  return {
    halt() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
    async release() {
      stopped = true;
      if (timer) clearTimeout(timer);
      const cur = await read().catch(() => null);
      if (cur?.spec?.holderIdentity !== o.identity) return;
      await api
        .replaceNamespacedLease({
          name: o.name,
          namespace: o.namespace,
          body: { ...cur, spec: { ...cur.spec, holderIdentity: '', leaseDurationSeconds: 1 } },
        })
        .catch(() => undefined);
    },
  };
}
