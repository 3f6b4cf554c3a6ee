import { GetObjectCommand, NoSuchKey } from '@aws-sdk/client-s3';
import { isTerminal, type JobStatus } from '@gpulab/core';
import type { LogEntry } from '@gpulab/queue';
import { layout } from '@gpulab/storage';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ApiDeps } from '../deps';

/**
 * A job's output: live from the log bus (Redis) while it runs and shortly after, from the S3 archive of each
 * attempt after that. `follow` streams it as server-sent events — each chunk an event whose id is its stream id, so
 * a client reconnecting with Last-Event-ID resumes where it stopped — until the job has ended and the stream is
 * drained (`event: end`).
 */
export async function logText(deps: ApiDeps, jobId: string, attempt: number): Promise<string> {
  const live = deps.logs ? (await deps.logs.read(jobId)).filter((e) => e.attempt === attempt) : [];
  if (live.length) return live.map((e) => e.text).join('');
  try {
    const res = await deps.s3.send(new GetObjectCommand({ Bucket: deps.bucket, Key: layout.logs(jobId, attempt) }));
    return (await res.Body?.transformToString('utf-8')) ?? '';
  } catch (e) {
    if (e instanceof NoSuchKey || (e as { name?: string }).name === 'NoSuchKey') return '';
    throw e;
  }
}

export async function followLogs(
  deps: ApiDeps,
  req: FastifyRequest,
  reply: FastifyReply,
  job: { id: string },
  o: { attempt: number | null; lastEventId: string | null; pollMs?: number },
): Promise<void> {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  let open = true;
  req.raw.on('close', () => {
    open = false;
  });
  const send = (e: LogEntry) => {
    if (o.attempt !== null && e.attempt !== o.attempt) return;
    const data = e.text.replace(/\n$/, '').split('\n');
    res.write(`id: ${e.id}\nevent: log\n${data.map((d) => `data: ${d}`).join('\n')}\n\n`);
  };
  if (!deps.logs) {
    const status = await statusOf(deps, job.id);
    res.write(`event: end\ndata: ${JSON.stringify({ status, live: false })}\n\n`);
    res.end();
    return;
  }
  const conn = deps.redis.duplicate();
  let after = o.lastEventId ?? '0';
  try {
    for (const e of await deps.logs.read(job.id, after)) {
      send(e);
      after = e.id;
    }
    while (open) {
      const status = await statusOf(deps, job.id);
      const entries = await deps.logs.follow(conn, job.id, after, o.pollMs ?? 2000);
      for (const e of entries) {
        send(e);
        after = e.id;
      }
      if (entries.length === 0 && status !== null && isTerminal(status)) {
        res.write(`event: end\ndata: ${JSON.stringify({ status })}\n\n`);
        break;
      }
      if (entries.length === 0) res.write(': keep-alive\n\n');
    }
  } finally {
    conn.disconnect();
    res.end();
  }
}

async function statusOf(deps: ApiDeps, jobId: string): Promise<JobStatus | null> {
  return (await deps.db.job.findUnique({ where: { id: jobId }, select: { status: true } }))?.status ?? null;
}
