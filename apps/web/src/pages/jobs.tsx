import { JOB_STATUSES } from '@gpulab/core/src/status';
import { type FormEvent, useState } from 'react';
import { client } from '../api/client';
import { qs } from '../api/endpoints';
import { JobsTable } from '../components/jobs-table';
import { ErrorNote, Loading } from '../components/notice';
import { useResource } from '../hooks/use-resource';
import { navigate, useLocation } from '../router';

const PAGE_SIZE = 20;
const GROUPS: Record<string, string> = {
  active: 'QUEUED,ADMITTED,LAUNCHING,RUNNING,RETRYING',
  ended: 'SUCCEEDED,FAILED,CANCELLED,TIMED_OUT,BUDGET_EXHAUSTED',
};

/** A date input's day as the ISO start of that local day (the API filters on submit time). */
const dayStart = (d: string) => (d ? new Date(`${d}T00:00:00`).toISOString() : undefined);
const dayAfter = (d: string) =>
  d ? new Date(new Date(`${d}T00:00:00`).getTime() + 86_400_000).toISOString() : undefined;

/**
 * My jobs, newest first: filters live in the URL (shareable, survive reload), pages follow the API's cursor (a stack
 * of the cursors seen, so Previous works), and the page on screen is polled for live status.
 */
export function JobsPage() {
  const { query } = useLocation();
  const filters = {
    status: query.get('status') ?? '',
    flavor: query.get('flavor') ?? '',
    from: query.get('from') ?? '',
    to: query.get('to') ?? '',
  };
  const key = JSON.stringify(filters);
  const [pages, setPages] = useState<{ key: string; cursors: (string | undefined)[] }>({ key, cursors: [undefined] });
  const cursors = pages.key === key ? pages.cursors : [undefined];
  const cursor = cursors.at(-1);
  const flavors = useResource(() => client.flavors(), []);

  const list = useResource(
    () =>
      client.jobs.list({
        ...(filters.status ? { status: GROUPS[filters.status] ?? filters.status } : {}),
        ...(filters.flavor ? { flavor: filters.flavor } : {}),
        ...(filters.from ? { from: dayStart(filters.from) } : {}),
        ...(filters.to ? { to: dayAfter(filters.to) } : {}),
        limit: PAGE_SIZE,
        ...(cursor ? { cursor } : {}),
      }),
    [key, cursor],
    () => 3000,
  );

  const apply = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const get = (k: string) => String(f.get(k) ?? '');
    navigate(`/jobs${qs({ status: get('status'), flavor: get('flavor'), from: get('from'), to: get('to') })}`);
  };

  return (
    <>
      <h1>My jobs</h1>
      <form className="filters" onSubmit={apply} aria-label="Filter jobs" key={key}>
        <div className="field">
          <label htmlFor="f-status">Status</label>
          <select id="f-status" name="status" defaultValue={filters.status}>
            <option value="">any</option>
            <option value="active">running or waiting</option>
            <option value="ended">ended</option>
            {JOB_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s.toLowerCase()}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="f-flavor">GPU type</label>
          <select id="f-flavor" name="flavor" defaultValue={filters.flavor}>
            <option value="">any</option>
            {flavors.data?.items.map((f) => (
              <option key={f.name} value={f.name}>
                {f.name}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="f-from">Submitted from</label>
          <input id="f-from" name="from" type="date" defaultValue={filters.from} />
        </div>
        <div className="field">
          <label htmlFor="f-to">to (inclusive)</label>
          <input id="f-to" name="to" type="date" defaultValue={filters.to} />
        </div>
        <div className="actions">
          <button type="submit">Apply</button>
          <button type="button" className="secondary" onClick={() => navigate('/jobs')}>
            Clear
          </button>
        </div>
      </form>
      <ErrorNote error={list.error} />
      {list.data ? (
        <JobsTable
          caption={`Jobs, page ${cursors.length} (newest first, updated live)`}
          jobs={list.data.items}
          empty="No jobs match."
        />
      ) : (
        <Loading what="jobs" />
      )}
      <nav className="pager" aria-label="Pages">
        <button
          type="button"
          className="secondary"
          disabled={cursors.length < 2}
          onClick={() => setPages({ key, cursors: cursors.slice(0, -1) })}
        >
          ← Newer
        </button>
        <span>Page {cursors.length}</span>
        <button
          type="button"
          className="secondary"
          disabled={!list.data?.nextCursor}
          onClick={() => list.data?.nextCursor && setPages({ key, cursors: [...cursors, list.data.nextCursor] })}
        >
          Older →
        </button>
      </nav>
    </>
  );
}
