#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { ApiError, GpulabClient } from './client';

const USAGE = `gpulab — fine-tune image classifiers on shared GPUs

Usage:
  gpulab submit SPEC.json [--follow]   submit a job spec (JSON) and optionally follow it to the end
  gpulab status JOB_ID [--json]        show a job's status, metrics and cost
  gpulab whoami                        show your user and quota

Environment: GPULAB_URL (default http://127.0.0.1:8080), GPULAB_TOKEN (an API token).`;

type Job = {
  id: string;
  status: string;
  statusMessage: string | null;
  pending: { reason: string; message: string } | null;
  metrics: Array<{ epoch: number; epochs: number; trainLoss: number; valLoss: number; valAcc: number }>;
  cost: { gpuSeconds: number; amount: number };
};
const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'BUDGET_EXHAUSTED']);

export function epochLine(m: Job['metrics'][number]): string {
  return `Epoch ${m.epoch}/${m.epochs} | Train Loss: ${m.trainLoss.toFixed(4)} | Val Loss: ${m.valLoss.toFixed(4)} | Val Acc: ${(m.valAcc * 100).toFixed(2)}%`;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, arg] = argv;
  const token = process.env.GPULAB_TOKEN;
  if (!cmd || cmd === '--help' || cmd === '-h') {
    console.log(USAGE);
    return cmd ? 0 : 2;
  }
  if (!token) {
    console.error('error: set GPULAB_TOKEN to an API token (the quickstart writes one to .gpulab/demo-token)');
    return 2;
  }
  const api = new GpulabClient(process.env.GPULAB_URL ?? 'http://127.0.0.1:8080', token);
  switch (cmd) {
    case 'whoami':
      console.log(JSON.stringify(await api.request('GET', '/v1/me'), null, 2));
      return 0;
    case 'status': {
      if (!arg) throw new Error('usage: gpulab status JOB_ID');
      const job = await api.request<Job>('GET', `/v1/jobs/${arg}`);
      if (argv.includes('--json')) console.log(JSON.stringify(job, null, 2));
      else printJob(job);
      return job.status === 'FAILED' ? 1 : 0;
    }
    case 'submit': {
      if (!arg) throw new Error('usage: gpulab submit SPEC.json [--follow]');
      const spec = JSON.parse(readFileSync(arg, 'utf8'));
      let job = await api.request<Job>('POST', '/v1/jobs', spec);
      console.log(`submitted job ${job.id} (${job.status})`);
      if (!argv.includes('--follow')) return 0;
      let shown = 0;
      while (!TERMINAL.has(job.status)) {
        await new Promise((r) => setTimeout(r, 1000));
        job = await api.request<Job>('GET', `/v1/jobs/${job.id}`);
        for (; shown < job.metrics.length; shown++) console.log(epochLine(job.metrics[shown]!));
      }
      printJob(job);
      return job.status === 'SUCCEEDED' ? 0 : 1;
    }
    default:
      console.error(`error: unknown command "${cmd}"\n\n${USAGE}`);
      return 2;
  }
}

function printJob(job: Job) {
  console.log(`job ${job.id}: ${job.status}${job.statusMessage ? ` — ${job.statusMessage}` : ''}`);
  if (job.pending) console.log(`  waiting (${job.pending.reason}): ${job.pending.message}`);
  for (const m of job.metrics) console.log(`  ${epochLine(m)}`);
  console.log(`  cost so far: ${job.cost.gpuSeconds} GPU-seconds (${job.cost.amount.toFixed(4)})`);
}

main(process.argv.slice(2))
  .then((code) => process.exit(code))
  .catch((e) => {
    console.error(`error: ${e instanceof ApiError || e instanceof Error ? e.message : String(e)}`);
    process.exit(e instanceof ApiError && e.status >= 500 ? 3 : 1);
  });
