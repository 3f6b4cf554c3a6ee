import { client } from '../../api/client';
import { groups } from '../../api/endpoints';
import { useAuth } from '../../auth';
import { JobsTable } from '../../components/jobs-table';
import { ErrorNote, Loading } from '../../components/notice';
import { useResource } from '../../hooks/use-resource';
import { GroupPicker, useChosenGroup } from './group-picker';

/**
 * The group's queue, live: its waiting jobs with why each waits (quota, capacity, fair share, reservation, per-user
 * cap), their position and expected start; and what runs now. Owners are named from the member list.
 */
export function QueuePage() {
  const { managed } = useAuth();
  const chosen = useChosenGroup(managed);
  const gid = chosen?.id ?? '';
  const members = useResource(() => (gid ? groups.get(gid) : Promise.resolve(null)), [gid]);
  const none = Promise.resolve({ items: [], nextCursor: null });
  const waiting = useResource(
    () => (gid ? client.jobs.list({ group: gid, status: 'QUEUED', limit: 200 }) : none),
    [gid],
    () => 3000,
  );
  const running = useResource(
    () =>
      gid
        ? client.jobs.list({ group: gid, status: ['ADMITTED', 'LAUNCHING', 'RUNNING', 'RETRYING'], limit: 200 })
        : none,
    [gid],
    () => 3000,
  );
  // The list carries the reason's code; its sentence with the numbers is in each job's detail (first 50 waiting).
  const ids = (waiting.data?.items ?? []).slice(0, 50).map((j) => j.id);
  const details = useResource(
    () => Promise.all(ids.map((id) => client.jobs.get(id).catch(() => null))),
    [ids.join(',')],
    () => 10_000,
  );
  const reasons = new Map(
    (details.data ?? []).flatMap((j) => (j?.pending?.message ? [[j.id, j.pending.message] as const] : [])),
  );
  const owners = new Map((members.data?.members ?? []).map((m) => [m.user.id, `${m.user.name} (${m.user.email})`]));
  const byPosition = [...(waiting.data?.items ?? [])].sort(
    (a, b) => (a.queuePosition ?? 1e9) - (b.queuePosition ?? 1e9),
  );

  if (!managed.length) return <p>You do not manage any group.</p>;
  return (
    <>
      <h1>Queue</h1>
      <GroupPicker managed={managed} chosen={chosen} base="/admin/queue" />
      <ErrorNote error={waiting.error ?? running.error} />
      <section aria-labelledby="wait-h">
        <h2 id="wait-h">Waiting ({waiting.data?.items.length ?? '…'})</h2>
        {waiting.data ? (
          <JobsTable
            caption="Waiting jobs, by queue position, with why each waits"
            jobs={byPosition}
            owners={owners}
            reasons={reasons}
            empty="Nobody is waiting."
          />
        ) : (
          <Loading what="the queue" />
        )}
      </section>
      <section aria-labelledby="run-h">
        <h2 id="run-h">Running ({running.data?.items.length ?? '…'})</h2>
        {running.data ? (
          <JobsTable
            caption="Admitted and running jobs"
            jobs={running.data.items}
            owners={owners}
            empty="Nothing runs now."
          />
        ) : null}
      </section>
    </>
  );
}
