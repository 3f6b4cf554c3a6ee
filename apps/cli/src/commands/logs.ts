/** logs: a job's trainer output; -f streams it (server-sent events) until the job ends. */
import { type Command, flag, num } from '../command';
import { EXIT } from '../exit-codes';
import { detachHint } from '../follow';
import { resolveJobId } from '../job-ref';

export const logs: Command = {
  name: 'logs',
  summary: "a job's output (the trainer's log); -f follows it live until the job ends",
  usage: 'JOB [-f] [--attempt N]',
  details: 'With --json: {"jobId","text"}, or with -f one JSON object per line ({"text"}, then {"status"}).',
  options: {
    follow: { type: 'boolean', short: 'f', help: 'stream new output until the job ends (Ctrl-C detaches)' },
    attempt: { type: 'string', arg: 'N', help: 'an earlier attempt (default: the latest)' },
  },
  positionals: { min: 1, max: 1, completes: 'jobs' },
  examples: ['gpulab logs 3f2a9c1e', 'gpulab logs last -f', 'gpulab logs 3f2a9c1e --attempt 1 > attempt-1.log'],
  async run(ctx, args) {
    const client = ctx.client();
    const id = await resolveJobId(client, args.positionals[0]!);
    const attempt = num('logs', args, 'attempt', { integer: true, min: 1, max: 100 });
    if (!flag(args, 'follow')) {
      const text = await client.jobs.logs(id, attempt);
      if (ctx.json) ctx.outJson({ jobId: id, attempt: attempt ?? null, text });
      else ctx.io.stdout.write(text);
      return EXIT.OK;
    }
    let status: string | null = null;
    try {
      status = await client.jobs.followLogs(
        id,
        (text) => ctx.io.stdout.write(ctx.json ? `${JSON.stringify({ text })}\n` : text),
        ctx.signal,
      );
    } catch (e) {
      if (!ctx.signal.aborted) throw e;
    }
    if (ctx.signal.aborted) {
      ctx.note(detachHint(id), true);
      return EXIT.INTERRUPTED;
    }
    if (ctx.json) ctx.out(JSON.stringify({ status }));
    else ctx.note(`job ${id} ended: ${status ?? 'unknown'}`);
    return status === 'SUCCEEDED' ? EXIT.OK : EXIT.JOB_FAILED;
  },
};
