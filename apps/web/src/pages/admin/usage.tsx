import { type FormEvent, useState } from 'react';
import { reports, type UsageQuery } from '../../api/endpoints';
import { useAuth } from '../../auth';
import { ErrorNote, Loading } from '../../components/notice';
import { gpuHours, moneyMicros } from '../../format';
import { useResource } from '../../hooks/use-resource';
import { GroupPicker, useChosenGroup } from './group-picker';

const BY = [
  { value: 'user', label: 'student' },
  { value: 'user,month', label: 'student and month' },
  { value: 'flavor', label: 'GPU type' },
  { value: 'month', label: 'month' },
];

const dayIso = (d: string) => (d ? new Date(`${d}T00:00:00`).toISOString() : undefined);

/** Usage and spend from the hourly cost ledger, per student (or month, GPU type), with the same report as CSV. */
export function UsagePage() {
  const { managed } = useAuth();
  const chosen = useChosenGroup(managed);
  const [q, setQ] = useState<{ by: string; from: string; to: string }>({ by: 'user', from: '', to: '' });
  const query: UsageQuery = {
    by: q.by,
    ...(chosen ? { group: chosen.id } : {}),
    ...(q.from ? { from: dayIso(q.from) } : {}),
    ...(q.to ? { to: dayIso(q.to) } : {}),
  };
  const report = useResource(
    () => reports.usage(query),
    [JSON.stringify(query)],
    () => 30_000,
  );

  const apply = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    setQ({ by: String(f.get('by')), from: String(f.get('from') ?? ''), to: String(f.get('to') ?? '') });
  };

  const keys = q.by.split(',');
  return (
    <>
      <h1>Usage</h1>
      <GroupPicker managed={managed} chosen={chosen} base="/admin/usage" />
      <form className="filters" onSubmit={apply} aria-label="Report options">
        <div className="field">
          <label htmlFor="u-by">Per</label>
          <select id="u-by" name="by" defaultValue={q.by}>
            {BY.map((b) => (
              <option key={b.value} value={b.value}>
                {b.label}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="u-from">From</label>
          <input id="u-from" name="from" type="date" defaultValue={q.from} />
        </div>
        <div className="field">
          <label htmlFor="u-to">Before</label>
          <input id="u-to" name="to" type="date" defaultValue={q.to} />
        </div>
        <div className="actions">
          <button type="submit">Show</button>
          <a className="button secondary" href={reports.usageCsvHref(query)} download>
            Export CSV
          </a>
        </div>
      </form>
      <ErrorNote error={report.error} />
      {report.data ? (
        <div className="table-wrap">
          <table>
            <caption>
              GPU usage{chosen ? ` in ${chosen.name}` : ''} per {BY.find((b) => b.value === q.by)?.label}
            </caption>
            <thead>
              <tr>
                {keys.includes('user') ? <th scope="col">Student</th> : null}
                {keys.includes('month') ? <th scope="col">Month</th> : null}
                {keys.includes('flavor') ? <th scope="col">GPU type</th> : null}
                <th scope="col" className="num">
                  GPU time
                </th>
                <th scope="col" className="num">
                  Jobs
                </th>
                <th scope="col" className="num">
                  Cost
                </th>
              </tr>
            </thead>
            <tbody>
              {report.data.rows.map((r) => (
                <tr key={`${r.userId ?? ''}|${r.month ?? ''}|${r.flavor ?? ''}`}>
                  {keys.includes('user') ? (
                    <th scope="row">
                      {r.userName}
                      <div className="small muted">{r.userEmail}</div>
                    </th>
                  ) : null}
                  {keys.includes('month') ? <td>{r.month}</td> : null}
                  {keys.includes('flavor') ? <td>{r.flavor}</td> : null}
                  <td className="num">{gpuHours(r.gpuHours)}</td>
                  <td className="num">{r.jobs}</td>
                  <td className="num">{moneyMicros(r.amountMicros)}</td>
                </tr>
              ))}
              {report.data.rows.length === 0 ? (
                <tr>
                  <td colSpan={keys.length + 3} className="muted">
                    No usage in this period.
                  </td>
                </tr>
              ) : null}
            </tbody>
            <tfoot>
              <tr>
                <th scope="row" colSpan={keys.length}>
                  Total
                </th>
                <td className="num">{gpuHours(report.data.totals.gpuHours)}</td>
                <td className="num">{report.data.totals.jobs}</td>
                <td className="num">{moneyMicros(report.data.totals.amountMicros)}</td>
              </tr>
            </tfoot>
          </table>
        </div>
      ) : (
        <Loading what="the report" />
      )}
    </>
  );
}
