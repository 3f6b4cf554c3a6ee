import { gpuHours } from '../format';

interface QuotaBarProps {
  label: string;
  grantedHours: number;
  heldHours: number;
  usedHours: number;
  freeHours: number;
  /** What the total is called: a member's `granted` hours, a group's `budget`. */
  totalName?: string;
}

/**
 * A GPU-hour balance as one bar: used, held (by running jobs and bookings) and free, out of granted; the legend
 * repeats the numbers as text.
 */
export function QuotaBar({
  label,
  grantedHours,
  heldHours,
  usedHours,
  freeHours,
  totalName = 'granted',
}: QuotaBarProps) {
  const total = Math.max(grantedHours, usedHours + heldHours + Math.max(0, freeHours), 1e-9);
  const pct = (h: number) => `${Math.max(0, Math.min(100, (h / total) * 100))}%`;
  const summary = `${label}: ${gpuHours(usedHours)} used, ${gpuHours(heldHours)} held, ${gpuHours(freeHours)} free of ${gpuHours(grantedHours)} ${totalName}`;
  return (
    <figure className="quota">
      <figcaption>
        <strong>{label}</strong>{' '}
        <span className="muted">
          {gpuHours(grantedHours)} {totalName}
        </span>
      </figcaption>
      <div className="quota-bar" role="img" aria-label={summary}>
        <span className="seg used" style={{ width: pct(usedHours) }} />
        <span className="seg held" style={{ width: pct(heldHours) }} />
        <span className="seg free" style={{ width: pct(Math.max(0, freeHours)) }} />
      </div>
      <ul className="legend">
        <li>
          <i className="swatch used" aria-hidden="true" /> used {gpuHours(usedHours)}
        </li>
        <li>
          <i className="swatch held" aria-hidden="true" /> held {gpuHours(heldHours)}
        </li>
        <li>
          <i className="swatch free" aria-hidden="true" /> free {gpuHours(freeHours)}
        </li>
      </ul>
    </figure>
  );
}
