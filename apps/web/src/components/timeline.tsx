import type { Flavor, Reservation } from '@gpulab/sdk';
import { useId } from 'react';

interface Props {
  flavors: Flavor[];
  bookings: Reservation[];
  from: Date;
  days: number;
}

const W = 760;
const LANE_LABEL = 110;
const ROW = 14;
const MAX_ROWS = 12;

/** First rows for each booking (by start) so that overlapping bookings never share a row; a booking of g GPUs takes g rows. */
export function stackRows(items: readonly { start: number; end: number; gpus: number }[]): number[] {
  const rowsEnd: number[] = [];
  const free = (r: number, b: { start: number; gpus: number }) => {
    for (let k = r; k < r + b.gpus; k++) if ((rowsEnd[k] ?? Number.NEGATIVE_INFINITY) > b.start) return false;
    return true;
  };
  return items.map((b) => {
    let r = 0;
    while (!free(r, b)) r++;
    for (let k = r; k < r + b.gpus; k++) rowsEnd[k] = b.end;
    return r;
  });
}

/**
 * A week (or `days`) of my bookings per GPU type: one lane per flavor, one row per GPU of its capacity, each
 * booking a bar over its window and its GPUs; a line marks now. Text alternatives: each bar's title, and the
 * bookings table on the page.
 */
export function Timeline({ flavors, bookings, from, days }: Props) {
  const id = useId();
  const t0 = from.getTime();
  const t1 = t0 + days * 86_400_000;
  const sx = (t: number) => LANE_LABEL + ((Math.min(Math.max(t, t0), t1) - t0) / (t1 - t0)) * (W - LANE_LABEL - 8);
  const lanes = flavors.map((f) => {
    const mine = bookings
      .filter((b) => b.flavor === f.name && b.status === 'booked')
      .map((b) => ({ b, start: new Date(b.start).getTime(), end: new Date(b.end).getTime(), gpus: b.gpus }))
      .filter((x) => x.end > t0 && x.start < t1)
      .sort((a, c) => a.start - c.start);
    const rows = stackRows(mine);
    const used = Math.max(0, ...rows.map((r, i) => r + mine[i]!.gpus));
    const n = Math.max(1, Math.min(MAX_ROWS, Math.max(f.capacity, used)));
    return {
      f,
      mine,
      rows,
      n,
      scale: Math.max(f.capacity, used) > MAX_ROWS ? MAX_ROWS / Math.max(f.capacity, used) : 1,
    };
  });
  let y = 28;
  const laneY = lanes.map((l) => {
    const at = y;
    y += l.n * ROW + 18;
    return at;
  });
  const H = y + 4;
  const now = Date.now();
  const dayTicks = Array.from({ length: days + 1 }, (_, i) => {
    const d = new Date(t0);
    d.setHours(0, 0, 0, 0);
    return d.getTime() + i * 86_400_000;
  }).filter((t) => t >= t0 && t <= t1);

  return (
    <figure className="chart timeline">
      <figcaption id={`${id}-t`}>
        My bookings over the next {days} days, by GPU type (one row per GPU of capacity)
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={`${id}-t`}>
        <title>My bookings by GPU type</title>
        <g className="grid">
          {dayTicks.map((t) => (
            <g key={t}>
              <line x1={sx(t)} x2={sx(t)} y1={18} y2={H - 4} />
              <text x={sx(t) + 3} y={12} className="tick">
                {new Date(t).toLocaleDateString(undefined, { weekday: 'short', day: 'numeric' })}
              </text>
            </g>
          ))}
        </g>
        {lanes.map((l, li) => (
          <g key={l.f.name} transform={`translate(0 ${laneY[li]})`}>
            <text x={4} y={12} className="lane-label">
              {l.f.name}
            </text>
            <text x={4} y={26} className="tick">
              {l.f.capacity} GPU{l.f.capacity === 1 ? '' : 's'}
            </text>
            <rect className="lane" x={LANE_LABEL} y={0} width={W - LANE_LABEL - 8} height={l.n * ROW} />
            {l.mine.map((m, i) => (
              <rect
                key={m.b.id}
                className="booking"
                x={sx(m.start)}
                y={l.rows[i]! * ROW * l.scale + 1}
                width={Math.max(2, sx(m.end) - sx(m.start))}
                height={Math.max(4, m.gpus * ROW * l.scale - 2)}
                rx={3}
              >
                <title>{`${m.gpus} × ${l.f.name}, ${new Date(m.b.start).toLocaleString()} – ${new Date(m.b.end).toLocaleString()}`}</title>
              </rect>
            ))}
          </g>
        ))}
        {now >= t0 && now <= t1 ? <line className="now" x1={sx(now)} x2={sx(now)} y1={18} y2={H - 4} /> : null}
      </svg>
    </figure>
  );
}
