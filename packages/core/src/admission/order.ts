import { fairShareKey, readUsage } from './fair-share';
import type { AdmissionSnapshot, PendingJob } from './snapshot';

/**
 * Each user's fair-share key at `now` (decayed usage / weight). Users without a share row have no usage and weight
 * 1, so their key is 0 (a newcomer goes first among equals).
 */
export function fairShareKeys(snapshot: AdmissionSnapshot, now: Date): Map<string, number> {
  const keys = new Map<string, number>();
  for (const s of snapshot.shares) {
    keys.set(s.userId, fairShareKey(readUsage(s.usage, now, snapshot.policy.halfLifeSeconds), s.weight));
  }
  return keys;
}

/**
 * The admission order: priority (higher first), then the owner's fair-share key (lower first), then submit time
 * (older first), then id — a total order, so a pass is deterministic. The keys are fixed for the pass (the per-user
 * running-GPU cap, not a re-sort after each admission, keeps one light user from taking everything). O(n log n).
 */
export function admissionOrder(snapshot: AdmissionSnapshot, now: Date): PendingJob[] {
  const keys = fairShareKeys(snapshot, now);
  const jobs = snapshot.pending;
  const n = jobs.length;
  const prio = new Float64Array(n);
  const key = new Float64Array(n);
  const time = new Float64Array(n);
  const idx: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const j = jobs[i]!;
    prio[i] = j.priority;
    key[i] = keys.get(j.userId) ?? 0;
    time[i] = j.submittedAt.getTime();
    idx[i] = i;
  }
  idx.sort((a, b) => {
    if (prio[a] !== prio[b]) return prio[b]! - prio[a]!;
    if (key[a] !== key[b]) return key[a]! < key[b]! ? -1 : 1;
    if (time[a] !== time[b]) return time[a]! - time[b]!;
    const ia = jobs[a]!.id;
    const ib = jobs[b]!.id;
    return ia < ib ? -1 : ia > ib ? 1 : 0;
  });
  return idx.map((i) => jobs[i]!);
}
