/** jobs (the table), status (one job, optionally followed), cancel. */

import { GpulabApiError } from '@gpulab/sdk';
import { type Command, flag, num, str, usageError } from '../command';
import { CliError, EXIT } from '../exit-codes';
import { detachHint, exitFor, followJob } from '../follow';
import { table } from '../format';
import { resolveJobId } from '../job-ref';
import { JOB_TABLE_HEADERS, jobDetail, jobRow } from '../job-view';

const STATUSES = [
  'QUEUED',
  'ADMITTED',
  'LAUNCHING',
  'RUNNING',
  'RETRYING',
  'SUCCEEDED',
  'FAILED',
  'CANCELLED',
  'TIMED_OUT',
  'BUDGET_EXHAUSTED',
];

export const jobs: Command = {
  name: 'jobs',
  summary: 'list your jobs, newest first',
  usage: '[--status S[,S…]] [--limit N]',
  options: {
    status: { type: 'string', arg: 'S,…', help: `only these statuses (${STATUSES.join(', ')})`, choices: STATUSES },
    limit: { type: 'string', arg: 'N', help: 'at most N jobs, 1-200 (default 20)' },
    quiet: { type: 'boolean', short: 'q', help: 'only the job ids, one per line' },
  },
  positionals: { min: 0, max: 0 },
  examples: ['gpulab jobs', 'gpulab jobs --status running,queued', 'gpulab jobs --limit 100 --json'],
  async run(ctx, args) {
    const limit = num('jobs', args, 'limit', { integer: true, min: 1, max: 200 }) ?? 20;
    const status = str(args, 'status')
      ?.split(',')
      .map((s) => s.trim().toUpperCase())
      .filter(Boolean);
    const unknown = status?.filter((s) => !STATUSES.includes(s)) ?? [];
    if (unknown.length) throw usageError('jobs', `unknown status ${unknown.join(', ')}; use ${STATUSES.join(', ')}`);
    const page = await ctx.client().jobs.list({ limit, ...(status?.length ? { status } : {}) });
    if (ctx.json) ctx.outJson(page);
    else if (flag(args, 'quiet')) for (const j of page.items) ctx.out(j.id);
    else if (page.items.length === 0) ctx.out(status ? 'no jobs with that status' : 'no jobs yet — gpulab submit DIR');
    else {
      const now = new Date();
      ctx.out(
        table(
          JOB_TABLE_HEADERS,
          page.items.map((j) => jobRow(j, now)),
        ),
      );
      if (page.nextCursor) ctx.note(`(more: gpulab jobs --limit ${Math.min(200, limit * 2)})`);
    }
    return EXIT.OK;
  },
};

export const status: Command = {
  name: 'status',
  summary: "a job's status, why it waits, epochs, cost and model; --follow until it ends",
  usage: 'JOB [--follow]',
  details:
    'JOB is a job id, its first characters (as gpulab jobs shows them), or "last".\n' +
    'Exits 1 when the job ended without succeeding.',
  options: { follow: { type: 'boolean', short: 'f', help: 'keep printing until the job ends (Ctrl-C detaches)' } },
  positionals: { min: 1, max: 1, completes: 'jobs' },
  examples: ['gpulab status 3f2a9c1e', 'gpulab status last --follow', 'gpulab status 3f2a9c1e --json | jq .status'],
  async run(ctx, args) {
    const client = ctx.client();
    const id = await resolveJobId(client, args.positionals[0]!);
    const job = await client.jobs.get(id);
    if (!flag(args, 'follow')) {
      if (ctx.json) ctx.outJson(job);
      else for (const line of jobDetail(job)) ctx.out(line);
      return exitForStatus(job.status);
    }
    const r = await followJob(ctx, client, id, { first: job });
    if (ctx.json) ctx.outJson(r.job);
    if (r.detached) {
      ctx.note(detachHint(id), true);
      return EXIT.INTERRUPTED;
    }
    return exitFor(r.job);
  },
};

/** Running or queued is fine; ended without success is 1. */
function exitForStatus(s: string): number {
  return ['FAILED', 'CANCELLED', 'TIMED_OUT', 'BUDGET_EXHAUSTED'].includes(s) ? EXIT.JOB_FAILED : EXIT.OK;
}

export const cancel: Command = {
  name: 'cancel',
  summary: 'cancel a job (a running one checkpoints, then stops; you pay only for what it used)',
  usage: 'JOB',
  options: {},
  positionals: { min: 1, max: 1, completes: 'jobs' },
  examples: ['gpulab cancel 3f2a9c1e', 'gpulab cancel last'],
  async run(ctx, args) {
    const client = ctx.client();
    const id = await resolveJobId(client, args.positionals[0]!);
    const job = await client.jobs.cancel(id).catch((e) => {
      const ended = e instanceof GpulabApiError && e.status === 409 ? e.body.status : undefined;
      if (typeof ended !== 'string') throw e;
      throw new CliError(`job ${id} already ended as ${ended}: nothing to cancel`, EXIT.REFUSED, undefined, e.code);
    });
    if (ctx.json) ctx.outJson(job);
    else if (job.status === 'CANCELLED') ctx.out(`job ${id} CANCELLED`);
    else ctx.out(`job ${id} is stopping (it checkpoints first); watch it: gpulab status ${id} --follow`);
    return EXIT.OK;
  },
};
