/** A job for people: the `gpulab status` page and the `gpulab jobs` table rows. */
import type { Job, JobListItem } from '@gpulab/sdk';
import { bytes, costLine, epochLine, hours, modelSummary, money, pendingLine, relative, shortId } from './format';

export function jobDetail(job: Job, now = new Date()): string[] {
  const lines: string[] = [];
  const name = job.name ? ` "${job.name}"` : '';
  lines.push(`job ${job.id}${name}`);
  lines.push(`  status:     ${job.status}${job.statusMessage ? ` — ${job.statusMessage}` : ''}`);
  if (job.pending && job.status === 'QUEUED') lines.push(`  ${pendingLine(job.pending, now)}`);
  const max = job.maxRuntimeSeconds / 3600;
  lines.push(
    `  resources:  ${job.gpus} × ${job.flavor} GPU, max ${hours(max)} h (holds ${hours(job.hold.gpuHours)} GPU-h)` +
      (job.backend ? `, backend ${job.backend}` : ''),
  );
  lines.push(`  submitted:  ${relative(job.createdAt, now)}`);
  if (job.startedAt) lines.push(`  started:    ${relative(job.startedAt, now)}`);
  if (job.finishedAt) lines.push(`  finished:   ${relative(job.finishedAt, now)}`);
  if (job.attempt > 1) lines.push(`  attempt:    ${job.attempt} of ${job.maxAttempts}`);
  const metrics = [...job.metrics].sort((a, b) => a.attempt - b.attempt || a.epoch - b.epoch);
  for (const m of metrics) lines.push(`  ${epochLine(m)}`);
  lines.push(`  cost:       ${costLine(job)}`);
  const model = modelSummary(job);
  if (model) {
    lines.push(`  model:      ${model.prefix} (${model.files} files, ${bytes(model.bytes)})`);
    lines.push(`              gpulab download ${job.id}`);
  }
  return lines;
}

export const JOB_TABLE_HEADERS = ['ID', 'NAME', 'STATUS', 'GPU', 'GPU-h / COST', 'SUBMITTED'];

export function jobRow(j: JobListItem, now = new Date()): string[] {
  const status = j.status === 'QUEUED' && j.pendingReason ? `QUEUED (${j.pendingReason})` : j.status;
  const cost = j.usedSeconds ? `${hours(j.usedSeconds / 3600)} / ${money(j.costMicros / 1e6)}` : '-';
  const name = j.name ?? '';
  return [
    shortId(j.id),
    name.length > 28 ? `${name.slice(0, 27)}…` : name,
    status,
    `${j.gpus}×${j.flavor}`,
    cost,
    relative(j.createdAt, now).replace(/ \(.*\)$/, ''),
  ];
}
