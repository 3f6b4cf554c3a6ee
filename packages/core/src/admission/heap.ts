/** GPUs that stay busy until `end` (ms since epoch). */
export interface Occupant {
  end: number;
  gpus: number;
}

/** A binary min-heap of occupants by end time (the next GPUs to free up on top). */
export class EndHeap {
  private readonly a: Occupant[];

  constructor(items: readonly Occupant[] = []) {
    this.a = items.slice();
    for (let i = (this.a.length >> 1) - 1; i >= 0; i--) this.down(i);
  }

  get size(): number {
    return this.a.length;
  }

  peek(): Occupant | undefined {
    return this.a[0];
  }

  /** The occupants, in heap order (not sorted). */
  items(): readonly Occupant[] {
    return this.a;
  }

  clone(): EndHeap {
    const h = new EndHeap();
    for (const o of this.a) h.a.push(o);
    return h;
  }

  push(o: Occupant): void {
    const a = this.a;
    a.push(o);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = a[p]!;
      if (parent.end <= o.end) break;
      a[i] = parent;
      i = p;
    }
    a[i] = o;
  }

  pop(): Occupant | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      this.down(0);
    }
    return top;
  }

  private down(start: number): void {
    const a = this.a;
    const n = a.length;
    const item = a[start]!;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && a[r]!.end < a[l]!.end ? r : l;
      const child = a[c]!;
      if (child.end >= item.end) break;
      a[i] = child;
      i = c;
    }
    a[i] = item;
  }
}
