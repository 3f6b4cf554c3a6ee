import { useId } from 'react';

export interface Series {
  name: string;
  /** A CSS class that sets its stroke (colour and dash), see styles.css. */
  className: string;
  points: { x: number; y: number }[];
}

interface LineChartProps {
  title: string;
  series: Series[];
  xLabel: string;
  yLabel: string;
  /** Fixed y range (accuracy: [0, 1]); default: from the data, starting at 0. */
  yDomain?: [number, number];
  formatY?: (y: number) => string;
  /** Marks one x (the best epoch). */
  highlightX?: number | null;
}

const W = 560;
const H = 260;
const M = { top: 16, right: 16, bottom: 44, left: 56 };

/** Nice tick values covering [lo, hi]: about `n` of them, on 1/2/5 × 10^k steps. */
export function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** A y range around the data with a margin (losses barely move on tiny data: from 0 they would look flat). */
function around(ys: number[]): [number, number] {
  if (!ys.length) return [0, 1];
  const lo = Math.min(...ys);
  const hi = Math.max(...ys);
  const pad = (hi - lo) * 0.15 || Math.abs(hi) * 0.05 || 0.1;
  return [Math.max(0, lo - pad), hi + pad];
}

/**
 * A line chart drawn as SVG, one path per series, with axes, ticks and a legend. Screen readers get the title and a
 * one-line summary (the numbers are also in the epoch table next to it).
 */
export function LineChart({ title, series, xLabel, yLabel, yDomain, formatY = String, highlightX }: LineChartProps) {
  const id = useId();
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y).filter(Number.isFinite);
  const x0 = Math.min(1, ...xs);
  const x1 = Math.max(x0 + 1, ...xs);
  const [y0, y1] = yDomain ?? around(ys);
  const iw = W - M.left - M.right;
  const ih = H - M.top - M.bottom;
  const sx = (x: number) => M.left + ((x - x0) / (x1 - x0)) * iw;
  const sy = (y: number) => M.top + ih - ((Math.min(Math.max(y, y0), y1) - y0) / (y1 - y0)) * ih;
  const xTicks = ticks(x0, x1, Math.min(10, x1 - x0)).filter(Number.isInteger);
  const yTicks = ticks(y0, y1, 5);
  // tick labels: the caller's format for a fixed range, else just enough digits to tell the ticks apart
  const step = (yTicks[1] ?? y1) - (yTicks[0] ?? y0);
  const tickLabel = yDomain
    ? formatY
    : (t: number) => t.toFixed(Math.max(0, Math.min(6, -Math.floor(Math.log10(step || 1)))));
  const last = series.map((s) => `${s.name} ${s.points.length ? formatY(s.points.at(-1)!.y) : 'no data'}`);
  const summary = all.length
    ? `${title}: ${series[0]?.points.length ?? 0} epochs; latest ${last.join(', ')}`
    : `${title}: no epochs yet`;

  return (
    <figure className="chart">
      <figcaption id={`${id}-t`}>{title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={`${id}-t`} aria-describedby={`${id}-d`}>
        <title>{title}</title>
        <desc id={`${id}-d`}>{summary}</desc>
        <g className="grid">
          {yTicks.map((t) => (
            <line key={`y${t}`} x1={M.left} x2={W - M.right} y1={sy(t)} y2={sy(t)} />
          ))}
        </g>
        <g className="axis">
          <line x1={M.left} x2={M.left} y1={M.top} y2={M.top + ih} />
          <line x1={M.left} x2={W - M.right} y1={M.top + ih} y2={M.top + ih} />
          {yTicks.map((t) => (
            <text key={`yl${t}`} x={M.left - 6} y={sy(t)} textAnchor="end" dominantBaseline="middle">
              {tickLabel(t)}
            </text>
          ))}
          {xTicks.map((t) => (
            <text key={`xl${t}`} x={sx(t)} y={M.top + ih + 16} textAnchor="middle">
              {t}
            </text>
          ))}
          <text x={M.left + iw / 2} y={H - 6} textAnchor="middle" className="axis-label">
            {xLabel}
          </text>
          <text
            x={14}
            y={M.top + ih / 2}
            textAnchor="middle"
            className="axis-label"
            transform={`rotate(-90 14 ${M.top + ih / 2})`}
          >
            {yLabel}
          </text>
        </g>
        {highlightX != null && highlightX >= x0 && highlightX <= x1 ? (
          <line className="highlight" x1={sx(highlightX)} x2={sx(highlightX)} y1={M.top} y2={M.top + ih} />
        ) : null}
        {series.map((s) => (
          <g key={s.name} className={`series ${s.className}`}>
            {s.points.length > 1 ? (
              <path
                className="line"
                d={s.points.map((p, i) => `${i ? 'L' : 'M'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')}
              />
            ) : null}
            {s.points.map((p) => (
              <circle key={p.x} cx={sx(p.x)} cy={sy(p.y)} r={3.5}>
                <title>{`${s.name}, ${xLabel.toLowerCase()} ${p.x}: ${formatY(p.y)}`}</title>
              </circle>
            ))}
          </g>
        ))}
      </svg>
      <ul className="legend">
        {series.map((s) => (
          <li key={s.name}>
            <i className={`swatch line ${s.className}`} aria-hidden="true" /> {s.name}
          </li>
        ))}
      </ul>
    </figure>
  );
}
