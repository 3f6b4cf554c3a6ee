import type { Job } from '@gpulab/sdk';
import { dateTime, duration, gpuHours, money, moneyMicros, time } from '../../format';

/**
 * What the job costs: so far (the ledger's sum), per clock hour (one ledger row each, at the rate it was first
 * charged), the current burn rate while it runs, and the hold it took against the quota.
 */
export function JobCost({ job, ratePerGpuHour }: { job: Job; ratePerGpuHour: number | null }) {
  const running = ['RUNNING', 'LAUNCHING', 'ADMITTED', 'RETRYING'].includes(job.status);
  const perHour = ratePerGpuHour === null ? null : ratePerGpuHour * job.gpus;
  return (
    <section aria-labelledby="cost-h">
      <h2 id="cost-h">Cost</h2>
      <dl className="facts">
        <div>
          <dt>Cost so far</dt>
          <dd>
            <strong>{money(job.cost.amount)}</strong> for {duration(job.cost.gpuSeconds)} of GPU time (
            {gpuHours(job.cost.gpuHours)})
          </dd>
        </div>
        <div>
          <dt>{running ? 'Burning now' : 'Price'}</dt>
          <dd>
            {perHour === null ? '—' : `${money(perHour)} per hour`}{' '}
            <span className="muted">
              ({job.gpus} GPU × {ratePerGpuHour === null ? '—' : money(ratePerGpuHour)} per GPU-hour on {job.flavor})
            </span>
          </dd>
        </div>
        <div>
          <dt>Held against my quota</dt>
          <dd>
            {gpuHours(job.hold.gpuHours)}{' '}
            <span className="muted">
              (max runtime {duration(job.maxRuntimeSeconds)} × {job.gpus} GPU; the unused rest is released when the job
              ends)
            </span>
          </dd>
        </div>
      </dl>
      {job.cost.ledger.length ? (
        <div className="table-wrap">
          <table>
            <caption>Cost per clock hour</caption>
            <thead>
              <tr>
                <th scope="col">Hour</th>
                <th scope="col" className="num">
                  GPU time
                </th>
                <th scope="col" className="num">
                  Rate per GPU-hour
                </th>
                <th scope="col" className="num">
                  Amount
                </th>
                <th scope="col">State</th>
              </tr>
            </thead>
            <tbody>
              {job.cost.ledger.map((r) => (
                <tr key={r.hourStart}>
                  <th scope="row" title={r.hourStart}>
                    {dateTime(r.hourStart)} – {time(new Date(new Date(r.hourStart).getTime() + 3600_000).toISOString())}
                  </th>
                  <td className="num">{duration(r.gpuSeconds)}</td>
                  <td className="num">{moneyMicros(r.rateMicrosPerHour)}</td>
                  <td className="num">{moneyMicros(r.amountMicros)}</td>
                  <td>{r.closed ? 'closed' : 'open'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p className="muted">Nothing charged yet: usage is metered per second once the trainer runs.</p>
      )}
    </section>
  );
}
