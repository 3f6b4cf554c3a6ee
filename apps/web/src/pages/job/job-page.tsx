import { isTerminal } from '@gpulab/core/src/status';
import { type Job, listDatasets } from '@gpulab/sdk';
import { useState } from 'react';
import { client, errorMessage } from '../../api/client';
import { useAuth } from '../../auth';
import { ErrorNote, Loading } from '../../components/notice';
import { StatusBadge } from '../../components/status-badge';
import { dateTime, duration, relative, shortId } from '../../format';
import { useResource } from '../../hooks/use-resource';
import { Link, navigate } from '../../router';
import { JobArtifacts } from './job-artifacts';
import { JobCharts } from './job-charts';
import { JobCost } from './job-cost';
import { JobHistory } from './job-history';
import { JobLogs } from './job-logs';

const RETRYABLE = ['FAILED', 'CANCELLED', 'TIMED_OUT', 'BUDGET_EXHAUSTED'];

/** One job, live until it ends: status and why, charts, logs, cost, history, artifacts; cancel and retry. */
export function JobPage({ id }: { id: string }) {
  const { user, refresh } = useAuth();
  const job = useResource(
    () => client.jobs.get(id),
    [id],
    (j) => (j && isTerminal(j.status) ? null : 2000),
  );
  const flavors = useResource(() => client.flavors(), []);
  const mine = useResource(() => listDatasets(client), []);
  const [acting, setActing] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);

  if (!job.data) return job.error ? <ErrorNote error={job.error} prefix="Job" /> : <Loading what="the job" />;
  const j: Job = job.data;
  const uri = (j.spec.dataset as { uri?: string } | undefined)?.uri;
  const classes = mine.data?.items.find((d) => d.uri === uri)?.classes ?? [];
  const rate = flavors.data?.items.find((f) => f.name === j.flavor)?.pricePerGpuHour ?? null;
  const owner = j.userId === user?.id;

  const act = async (what: 'cancel' | 'retry') => {
    if (what === 'cancel' && !window.confirm('Cancel this job? A running job stops after saving a checkpoint.')) return;
    setActing(what);
    setActionError(null);
    try {
      if (what === 'cancel') {
        await client.jobs.cancel(j.id);
        job.reload();
      } else {
        const next = await client.jobs.retry(j.id);
        navigate(`/jobs/${next.id}`);
      }
      void refresh();
    } catch (e) {
      setActionError(errorMessage(e));
    } finally {
      setActing(null);
    }
  };

  return (
    <>
      <p className="crumbs">
        <Link to="/jobs">My jobs</Link> / <span className="mono">{shortId(j.id)}</span>
      </p>
      <div className="page-head">
        <h1>{j.name ?? `Job ${shortId(j.id)}`}</h1>
        <div className="actions">
          {!isTerminal(j.status) ? (
            <button type="button" className="danger" disabled={acting !== null} onClick={() => void act('cancel')}>
              {acting === 'cancel' ? 'Cancelling…' : 'Cancel job'}
            </button>
          ) : null}
          {owner && RETRYABLE.includes(j.status) ? (
            <button type="button" disabled={acting !== null} onClick={() => void act('retry')}>
              {acting === 'retry' ? 'Submitting…' : 'Retry as a new job'}
            </button>
          ) : null}
        </div>
      </div>
      {actionError ? (
        <p className="note error" role="alert">
          {actionError}
        </p>
      ) : null}
      <div className="status-line" aria-live="polite" data-testid="job-status">
        <StatusBadge status={j.status} /> <span>{j.statusMessage ?? j.statusReason}</span>
      </div>
      {j.pending ? (
        <p className="note warn">
          Waiting ({j.pending.reason}): {j.pending.message}
          {j.pending.position != null ? ` · position ${j.pending.position} in the queue` : ''}
          {j.pending.estimatedStartAt
            ? ` · expected to start ${relative(j.pending.estimatedStartAt)} (${dateTime(j.pending.estimatedStartAt)})`
            : ''}
        </p>
      ) : null}
      <dl className="facts">
        <div>
          <dt>Resources</dt>
          <dd>
            {j.gpus} × {j.flavor}
            {j.backend ? ` · ${j.backend}` : ''}
          </dd>
        </div>
        <div>
          <dt>Submitted</dt>
          <dd>{dateTime(j.createdAt)}</dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>{dateTime(j.startedAt)}</dd>
        </div>
        <div>
          <dt>{j.finishedAt ? 'Finished' : 'Max runtime'}</dt>
          <dd>{j.finishedAt ? dateTime(j.finishedAt) : duration(j.maxRuntimeSeconds)}</dd>
        </div>
        <div>
          <dt>Recipe</dt>
          <dd className="small">{recipe(j)}</dd>
        </div>
        <div>
          <dt>Dataset</dt>
          <dd className="mono small">{uri ?? '—'}</dd>
        </div>
      </dl>
      <JobCharts job={j} classes={classes} />
      <JobLogs jobId={j.id} status={j.status} />
      <JobCost job={j} ratePerGpuHour={rate} />
      <JobArtifacts job={j} />
      <JobHistory job={j} />
    </>
  );
}

function recipe(j: Job): string {
  const s = j.spec as Record<string, unknown> & {
    optimizer?: { type?: string; lr?: number };
    freeze?: { mode?: string };
    schedule?: { type?: string };
  };
  const parts = [
    `${s.epochs ?? 25} epochs`,
    `${s.imageSize ?? 224}px`,
    `batch ${s.batchSize ?? 32}`,
    `${s.optimizer?.type ?? 'sgd'} lr ${s.optimizer?.lr ?? 0.001}`,
    `${s.schedule?.type ?? 'step'} schedule`,
    `train ${s.freeze?.mode ?? 'head'}`,
  ];
  return parts.join(' · ');
}
