import { client } from '../api/client';
import { useAuth } from '../auth';
import { JobsTable } from '../components/jobs-table';
import { ErrorNote, Loading } from '../components/notice';
import { QuotaBar } from '../components/quota-bar';
import { useResource } from '../hooks/use-resource';
import { Link } from '../router';

const ACTIVE = ['QUEUED', 'ADMITTED', 'LAUNCHING', 'RUNNING', 'RETRYING'];

/** My quota per group, my running and waiting jobs (live), and my recent jobs. */
export function HomePage() {
  const { user, refresh } = useAuth();
  const active = useResource(
    async () => {
      const page = await client.jobs.list({ status: ACTIVE, limit: 20 });
      return page.items;
    },
    [],
    () => 3000,
  );
  const recent = useResource(
    () => client.jobs.list({ limit: 8 }).then((p) => p.items),
    [],
    () => 10_000,
  );
  // Quota moves as jobs are admitted and end: refresh it with the active list.
  const activeCount = active.data?.length ?? 0;
  useResource(refresh, [activeCount]);

  return (
    <>
      <div className="page-head">
        <h1>Hello, {user?.name}</h1>
        <Link className="button" to="/submit">
          New fine-tune job
        </Link>
      </div>
      <section aria-labelledby="quota-h">
        <h2 id="quota-h">My GPU-hours</h2>
        {user?.quotas.length ? (
          <div className="grid-2">
            {user.quotas.map((q) => (
              <QuotaBar
                key={q.group.id}
                label={q.group.name}
                grantedHours={q.grantedHours}
                heldHours={q.heldHours}
                usedHours={q.usedHours}
                freeHours={q.freeHours}
              />
            ))}
          </div>
        ) : (
          <p className="muted">You are not in any group yet: ask your instructor to add you.</p>
        )}
      </section>
      <section aria-labelledby="active-h">
        <h2 id="active-h">Running and waiting</h2>
        <ErrorNote error={active.error} />
        {active.data ? (
          <div aria-live="polite">
            <JobsTable caption="My running and waiting jobs" jobs={active.data} empty="Nothing running right now." />
          </div>
        ) : (
          <Loading what="jobs" />
        )}
      </section>
      <section aria-labelledby="recent-h">
        <h2 id="recent-h">Recent jobs</h2>
        <ErrorNote error={recent.error} />
        {recent.data ? <JobsTable caption="My most recent jobs" jobs={recent.data} empty="No jobs yet." /> : null}
        <p>
          <Link to="/jobs">All my jobs →</Link>
        </p>
      </section>
    </>
  );
}
