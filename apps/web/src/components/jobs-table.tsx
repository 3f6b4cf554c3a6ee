import type { JobListItem } from '@gpulab/sdk';
import { dateTime, duration, moneyMicros, relative, shortId } from '../format';
import { Link } from '../router';
import { StatusBadge } from './status-badge';

interface Props {
  caption: string;
  jobs: JobListItem[];
  /** Shows the owner column (instructors' views), with names for user ids when known. */
  owners?: Map<string, string>;
  /** Why each waiting job waits, in words with the numbers (from the job's detail), by job id. */
  reasons?: Map<string, string>;
  empty?: string;
}

/** Jobs as a table: name, status (with the pending reason and queue position), flavor, times, usage and cost. */
export function JobsTable({ caption, jobs, owners, reasons, empty = 'No jobs.' }: Props) {
  if (!jobs.length) return <p className="muted">{empty}</p>;
  return (
    <div className="table-wrap">
      <table>
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Job</th>
            {owners ? <th scope="col">Owner</th> : null}
            <th scope="col">Status</th>
            <th scope="col">GPUs</th>
            <th scope="col">Submitted</th>
            <th scope="col">Ran</th>
            <th scope="col" className="num">
              Cost
            </th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((j) => (
            <tr key={j.id}>
              <th scope="row">
                <Link to={`/jobs/${j.id}`}>{j.name ?? `job ${shortId(j.id)}`}</Link>
                <div className="muted small mono">{shortId(j.id)}</div>
              </th>
              {owners ? <td>{owners.get(j.userId) ?? shortId(j.userId)}</td> : null}
              <td>
                <StatusBadge status={j.status} />
                {j.status === 'QUEUED' && j.pendingReason ? (
                  <div className="small">
                    waiting: {j.pendingReason}
                    {j.queuePosition != null ? ` · #${j.queuePosition}` : ''}
                    {j.estimatedStartAt ? ` · starts ${relative(j.estimatedStartAt)}` : ''}
                  </div>
                ) : null}
                {j.status === 'QUEUED' && reasons?.get(j.id) ? (
                  <div className="small muted">{reasons.get(j.id)}</div>
                ) : null}
              </td>
              <td>
                {j.gpus} × {j.flavor}
              </td>
              <td title={j.createdAt}>{dateTime(j.createdAt)}</td>
              <td>{duration(j.usedSeconds)}</td>
              <td className="num">{moneyMicros(j.costMicros)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
