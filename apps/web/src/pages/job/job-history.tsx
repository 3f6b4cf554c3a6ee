import type { Job } from '@gpulab/sdk';
import { StatusBadge } from '../../components/status-badge';
import { dateTime, duration } from '../../format';

/** Every status change with its reason and message, and each attempt (launch) with how it ended. */
export function JobHistory({ job }: { job: Job }) {
  return (
    <section aria-labelledby="history-h">
      <h2 id="history-h">History</h2>
      <div className="table-wrap">
        <table>
          <caption>Status changes</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">To</th>
              <th scope="col">Reason</th>
              <th scope="col">Message</th>
            </tr>
          </thead>
          <tbody>
            {job.transitions.map((t, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: transitions are an append-only list
              <tr key={i}>
                <th scope="row">{dateTime(t.at)}</th>
                <td>
                  <StatusBadge status={t.to} />
                </td>
                <td>{t.reason}</td>
                <td>{t.message ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {job.attempts.length ? (
        <div className="table-wrap">
          <table>
            <caption>Attempts</caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Where</th>
                <th scope="col">Ran</th>
                <th scope="col">Outcome</th>
                <th scope="col">Charged</th>
              </tr>
            </thead>
            <tbody>
              {job.attempts.map((a) => (
                <tr key={a.attempt}>
                  <th scope="row">{a.attempt}</th>
                  <td className="mono small">
                    {a.launcher}: {a.handle}
                  </td>
                  <td>
                    {a.startedAt && a.endedAt
                      ? duration((new Date(a.endedAt).getTime() - new Date(a.startedAt).getTime()) / 1000)
                      : a.startedAt
                        ? 'running'
                        : '—'}
                  </td>
                  <td>
                    {a.outcome ?? '—'}
                    {a.exitCode != null ? ` (exit ${a.exitCode})` : ''}
                    {a.signal ? ` (${a.signal})` : ''}
                  </td>
                  <td>{a.charged ? 'yes' : 'no'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}
