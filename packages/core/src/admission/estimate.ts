import { type FlavorPool, occupiedAt } from './capacity';
import { EndHeap, type Occupant } from './heap';

export interface Placement {
  /** When the job can start (ms since epoch). */
  start: number;
  /** Shared-pool GPUs left over its run before it is placed (≥ its GPUs). */
  room: number;
}

/**
 * Start-time estimates for one flavor's shared pool: the waiting jobs, in admission order, are placed one after
 * another at the earliest moment their GPUs are free for their whole max runtime (running jobs' latest ends,
 * bookings kept free). Start times never go backwards in the queue (list scheduling, as a FIFO queue would run):
 * a job's estimate counts every job ahead of it. The heap holds the jobs still busy at the simulated clock, so it
 * never holds more than `capacity` entries and a placement costs O(log capacity) plus the booking checks.
 */
export class StartSimulator {
  private readonly heap: EndHeap;
  private occ: number;
  private clock: number;

  constructor(
    private readonly pool: FlavorPool,
    occupants: readonly Occupant[],
    now: number,
  ) {
    this.heap = new EndHeap(occupants);
    this.occ = 0;
    for (const o of occupants) this.occ += o.gpus;
    this.clock = now;
  }

  /** Places the next job of the queue; null when it can never start (more GPUs than ever free up). */
  place(gpus: number, runtimeMs: number): Placement | null {
    const found = search(this.pool, this.heap, this.occ, this.clock, gpus, runtimeMs);
    if (!found) return null;
    this.clock = found.start;
    this.occ = found.occ + gpus;
    this.heap.push({ end: found.start + runtimeMs, gpus });
    return { start: found.start, room: found.room };
  }

  /**
   * Where a job would start if it were next, not before `notBefore`, without placing it (for a job held back by
   * something other than GPUs — its owner's cap — which must not hold up the queue behind it).
   */
  probe(gpus: number, runtimeMs: number, notBefore: number): Placement | null {
    const found = search(this.pool, this.heap.clone(), this.occ, Math.max(this.clock, notBefore), gpus, runtimeMs);
    return found ? { start: found.start, room: found.room } : null;
  }
}

/**
 * The earliest `t ≥ from` at which `room(t, t + runtime) ≥ gpus`. Room only grows when an occupant ends or a
 * booking ends, so those are the only candidates after `from`. Pops the heap up to the answer.
 */
function search(
  pool: FlavorPool,
  heap: EndHeap,
  occ0: number,
  from: number,
  gpus: number,
  runtimeMs: number,
): { start: number; room: number; occ: number } | null {
  if (pool.base < gpus) return null;
  let occ = occ0;
  let t = from;
  for (;;) {
    for (let top = heap.peek(); top && top.end <= t; top = heap.peek()) {
      heap.pop();
      occ -= top.gpus;
    }
    const at = t;
    const occHere = occ;
    const room = pool.room(t, t + runtimeMs, (s) => (s === at ? occHere : occupiedAt(heap.items(), s)));
    if (room >= gpus) return { start: t, room, occ };
    const next = Math.min(heap.peek()?.end ?? Number.POSITIVE_INFINITY, pool.nextBookingEndAfter(t));
    if (next === Number.POSITIVE_INFINITY) return null;
    t = next;
  }
}
