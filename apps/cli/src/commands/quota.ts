/** quota (your GPU-hours per group) and quote (what a job would hold, cost, and when it would start). */
import { readFile, stat } from 'node:fs/promises';
import type { Command } from '../command';
import { checkFolder, describeScan } from '../dataset/upload';
import { CliError, EXIT } from '../exit-codes';
import { hours, money, relative, table } from '../format';
import { buildSpec, parseSpecFile, SPEC_OPTIONS } from '../spec';

export const quota: Command = {
  name: 'quota',
  summary: 'your GPU-hours in each group: granted, held by running jobs and bookings, used, free',
  usage: '',
  options: {},
  positionals: { min: 0, max: 0 },
  examples: ['gpulab quota', 'gpulab quota --json'],
  async run(ctx) {
    const client = ctx.client();
    const [me, flavors] = await Promise.all([client.me(), client.flavors().catch(() => ({ items: [] }))]);
    if (ctx.json) {
      ctx.outJson({ quotas: me.quotas, flavors: flavors.items });
      return EXIT.OK;
    }
    if (me.quotas.length === 0) ctx.out('you are in no group yet: ask your instructor to add you');
    else
      ctx.out(
        table(
          ['GROUP', 'GRANTED', 'HELD', 'USED', 'FREE (GPU-h)'],
          me.quotas.map((q) => [
            q.group.name,
            hours(q.grantedHours),
            hours(q.heldHours),
            hours(q.usedHours),
            hours(q.freeHours),
          ]),
        ),
      );
    if (flavors.items.length) {
      ctx.out('');
      ctx.out(
        table(
          ['GPU', 'PRICE/GPU-h', 'IN USE'],
          flavors.items.map((f) => [f.name, money(f.pricePerGpuHour), `${f.inUse}/${f.capacity}`]),
        ),
      );
    }
    return EXIT.OK;
  },
};

/** Stands in for the dataset of a folder that is not uploaded: a quote does not read the dataset. */
const UNUPLOADED = 's3://gpulab-quote/not-uploaded/';

export const quote: Command = {
  name: 'quote',
  summary: 'what a job would hold from your quota, cost at most, and when it would start — before submitting',
  usage: 'DIR|SPEC.json [options]',
  details: 'Takes the same options as gpulab submit. A DIR is only checked (not uploaded).',
  options: { ...SPEC_OPTIONS },
  positionals: { min: 1, max: 1, completes: 'files' },
  examples: ['gpulab quote ./flowers --gpu a10g --gpus 2 --max-hours 3', 'gpulab quote spec.json --json'],
  async run(ctx, args) {
    const target = args.positionals[0]!;
    buildSpec('quote', args); // bad options fail first
    const st = await stat(target).catch(() => null);
    if (!st)
      throw new CliError(`no such folder or file: ${target}`, EXIT.NOT_FOUND, 'give a dataset folder or a SPEC.json');
    let spec: ReturnType<typeof buildSpec>;
    if (st.isDirectory()) {
      spec = { ...buildSpec('quote', args), dataset: { uri: UNUPLOADED } };
      ctx.note(`dataset ${target}: ${describeScan(await checkFolder(ctx, target))}`);
    } else spec = buildSpec('quote', args, parseSpecFile('quote', target, await readFile(target, 'utf8')));
    const q = await ctx.client().quote(spec);
    if (ctx.json) {
      ctx.outJson(q);
      return EXIT.OK;
    }
    const cost = q.cost === null ? 'price not set' : `at most ${money(q.cost)}`;
    ctx.out(`group:  ${q.group.name}`);
    ctx.out(`hold:   ${hours(q.gpuHours)} GPU-h (${q.gpus} × ${q.flavor}), ${cost}; you pay only for what it uses`);
    if (q.admitNow) ctx.out(`start:  now${q.usesReservation ? ' (in your reservation)' : ''}`);
    else {
      const p = q.pending;
      const where = p?.position ? `, position ${p.position}` : '';
      const when = q.estimatedStart ? `, estimated start ${relative(q.estimatedStart)}` : '';
      ctx.out(`start:  waits (${p?.reason ?? 'unknown'})${p?.message ? `: ${p.message}` : ''}${where}${when}`);
    }
    return EXIT.OK;
  },
};
