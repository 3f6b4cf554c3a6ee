/** submit: a dataset folder (uploaded, only what the server lacks) or a SPEC.json becomes a job, followed to its end. */
import { randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { type Command, flag, num, str } from '../command';
import { checkFolder, describeScan, type FolderUpload, uploadFolder } from '../dataset/upload';
import { CliError, EXIT } from '../exit-codes';
import { detachHint, exitFor, followJob } from '../follow';
import { buildSpec, parseSpecFile, SPEC_OPTIONS } from '../spec';

export const submit: Command = {
  name: 'submit',
  summary: 'upload a dataset folder and fine-tune ResNet18 on it (or submit a SPEC.json)',
  usage: 'DIR|SPEC.json [options]',
  details:
    'DIR is an ImageFolder: DIR/train/<class>/<image> and DIR/val/<class>/<image>. It is checked here first, then\n' +
    'only the files the server does not already have are uploaded (in parallel; resumable: if interrupted, run the\n' +
    'same command again). The job is then followed: one line per epoch, the cost so far, and where the model is.\n' +
    'Ctrl-C stops following, not the job. With SPEC.json (a job spec, as POST /v1/jobs takes) nothing is uploaded;\n' +
    'options override the spec.',
  options: {
    ...SPEC_OPTIONS,
    dataset: { type: 'string', arg: 'NAME', help: 'dataset name (default: folder name + content hash)' },
    detach: { type: 'boolean', short: 'd', help: 'print the job id and return; do not follow' },
    follow: { type: 'boolean', help: 'follow the job (the default; kept for older scripts)' },
    concurrency: { type: 'string', arg: 'N', help: 'parallel uploads (default 4)' },
  },
  positionals: { min: 1, max: 1, completes: 'dirs' },
  examples: [
    'gpulab submit ./flowers --epochs 10 --freeze head',
    'gpulab submit ./flowers --gpu a10g --max-hours 2 --freeze 2 --image-size 224 --lr 0.01 --name "flowers v2"',
    'gpulab submit ./flowers --detach --json | jq -r .job.id',
    'gpulab submit spec.json --epochs 3',
  ],
  async run(ctx, args) {
    const target = args.positionals[0]!;
    buildSpec('submit', args); // bad options fail before anything is read or sent
    const st = await stat(target).catch(() => null);
    if (!st)
      throw new CliError(`no such folder or file: ${target}`, EXIT.NOT_FOUND, 'give a dataset folder or a SPEC.json');
    const concurrency = num('submit', args, 'concurrency', { integer: true, min: 1, max: 64 });
    let upload: FolderUpload | null = null;
    let spec: ReturnType<typeof buildSpec>;
    if (st.isDirectory()) {
      spec = buildSpec('submit', args);
      const scan = await checkFolder(ctx, target);
      ctx.note(`dataset ${target}: ${describeScan(scan)}`);
      const client = ctx.client();
      upload = await uploadFolder(ctx, client, scan, {
        ...(str(args, 'dataset') ? { name: str(args, 'dataset')! } : {}),
        ...(concurrency ? { concurrency } : {}),
      });
      spec = { ...spec, dataset: { uri: upload.dataset.uri } };
    } else {
      spec = buildSpec('submit', args, parseSpecFile('submit', target, await readFile(target, 'utf8')));
    }
    const client = ctx.client();
    const job = await client.jobs.submit(spec, { idempotencyKey: randomUUID() });
    const extra = upload
      ? {
          dataset: upload.dataset,
          upload: {
            id: upload.session.id,
            resumed: upload.resumed,
            sent: upload.sent,
            transfer: upload.session.transfer,
          },
        }
      : {};
    if (!ctx.json) ctx.out(`submitted job ${job.id} (${job.status})`);
    if (flag(args, 'detach')) {
      if (ctx.json) ctx.outJson({ job, ...extra });
      else {
        ctx.out(`  follow it:  gpulab status ${job.id} --follow    (or: gpulab logs ${job.id} -f)`);
        ctx.out(`  cancel it:  gpulab cancel ${job.id}`);
      }
      return EXIT.OK;
    }
    const r = await followJob(ctx, client, job.id, { first: job, seen: job.status });
    if (ctx.json) ctx.outJson({ job: r.job, detached: r.detached, ...extra });
    if (r.detached) {
      ctx.note(detachHint(job.id), true);
      return EXIT.INTERRUPTED;
    }
    return exitFor(r.job);
  },
};
