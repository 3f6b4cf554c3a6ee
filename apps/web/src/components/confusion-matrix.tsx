import { useId } from 'react';

interface Props {
  title: string;
  /** counts[true][predicted]. */
  counts: number[][];
  labels: string[];
}

/**
 * The confusion matrix as an SVG grid: rows are the true class, columns the predicted one; each cell is shaded by
 * its share of its row (so per-class recall reads along the diagonal) and shows its count.
 */
export function ConfusionMatrix({ title, counts, labels }: Props) {
  const id = useId();
  const n = counts.length;
  const cell = n <= 4 ? 56 : n <= 10 ? 40 : 24;

  const correct = counts.reduce((s, row, i) => s + (row[i] ?? 0), 0);
  const total = counts.reduce((s, row) => s + row.reduce((a, b) => a + b, 0), 0);
  const name = (i: number) => labels[i] ?? `class ${i}`;
  const names = Array.from({ length: n }, (_, i) => name(i));
  const labelW = Math.min(140, 12 + Math.max(...names.map((l) => l.length), 1) * 7);
  const W = labelW + n * cell + 8;
  const H = labelW + n * cell + 8;
  const short = (s: string) => (s.length > 16 ? `${s.slice(0, 15)}…` : s);

  return (
    <figure className="chart confusion">
      <figcaption id={`${id}-t`}>{title}</figcaption>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        style={{ maxWidth: `${W * 1.2}px` }}
        role="img"
        aria-labelledby={`${id}-t`}
        aria-describedby={`${id}-d`}
      >
        <title>{title}</title>
        <desc id={`${id}-d`}>
          {`${correct} of ${total} validation images on the diagonal (classified correctly). Rows: true class; columns: predicted.`}
        </desc>
        {counts.map((row, i) => {
          const rowTotal = row.reduce((a, b) => a + b, 0) || 1;
          return row.map((c, j) => {
            const share = c / rowTotal;
            return (
              <g key={`${names[i]}→${names[j]}`} className={i === j ? 'cell diag' : 'cell'}>
                <rect
                  x={labelW + j * cell}
                  y={labelW + i * cell}
                  width={cell - 2}
                  height={cell - 2}
                  style={{ fillOpacity: 0.08 + share * 0.92 }}
                >
                  <title>{`true ${name(i)}, predicted ${name(j)}: ${c} (${Math.round(share * 100)}% of ${name(i)})`}</title>
                </rect>
                {cell >= 32 ? (
                  <text
                    x={labelW + j * cell + (cell - 2) / 2}
                    y={labelW + i * cell + (cell - 2) / 2}
                    textAnchor="middle"
                    dominantBaseline="middle"
                    className={share > 0.55 ? 'on-dark' : ''}
                  >
                    {c}
                  </text>
                ) : null}
              </g>
            );
          });
        })}
        {names.map((l, i) => (
          <g key={`label:${l}`}>
            <text x={labelW - 6} y={labelW + i * cell + cell / 2} textAnchor="end" dominantBaseline="middle">
              {short(l)}
            </text>
            <text
              x={labelW + i * cell + cell / 2}
              y={labelW - 6}
              textAnchor="start"
              transform={`rotate(-60 ${labelW + i * cell + cell / 2} ${labelW - 6})`}
            >
              {short(l)}
            </text>
          </g>
        ))}
      </svg>
      <p className="muted small">Rows: true class · columns: predicted class · shade: share of the row</p>
    </figure>
  );
}
