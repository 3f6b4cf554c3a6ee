/** reserve (book GPUs for a window) and reservations (list, cancel). */
import type { Reservation } from '@gpulab/sdk';
import { type Command, num, str, usageError } from '../command';
import { CliError, EXIT } from '../exit-codes';
import { hours, shortId, table } from '../format';

/** An ISO 8601 time, `now`, or `+N[mhd]` from now. */
export function parseWhen(cmd: string, flagName: string, raw: string, now = new Date()): Date {
  const v = raw.trim();
  if (v === 'now') return now;
  const rel = /^\+(\d+(?:\.\d+)?)([mhd])$/.exec(v);
  if (rel) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 'm' | 'h' | 'd'];
    return new Date(now.getTime() + Number(rel[1]) * unit);
  }
  const t = Date.parse(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(t))
    throw usageError(cmd, `--${flagName} must be an ISO time (2026-05-04T14:00:00Z), "now" or +N[m|h|d]; got ${raw}`);
  return new Date(t);
}

function when(iso: string): string {
  return new Date(iso).toLocaleString(undefined, {
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  });
}

export const reserve: Command = {
  name: 'reserve',
  summary: 'book GPUs for a time window; the GPU-hours are held from your quota now',
  usage: '--gpu FLAVOR --count N --from TIME --to TIME',
  details:
    'TIME is ISO 8601 (2026-05-04T14:00:00Z; without a zone: local time), "now", or +N[m|h|d] from now.\n' +
    'During the window those GPUs run only your jobs. Unused bookings are released after a grace period.',
  options: {
    gpu: { type: 'string', arg: 'FLAVOR', help: 'GPU type (see gpulab quota)' },
    count: { type: 'string', arg: 'N', help: 'how many GPUs' },
    from: { type: 'string', arg: 'TIME', help: 'start of the window' },
    to: { type: 'string', arg: 'TIME', help: 'end of the window' },
    group: { type: 'string', arg: 'GROUP', help: 'group to charge (default: your first)' },
    note: { type: 'string', arg: 'TEXT', help: 'a note for yourself' },
  },
  positionals: { min: 0, max: 0 },
  examples: [
    'gpulab reserve --gpu a10g --count 2 --from 2026-05-04T14:00 --to 2026-05-04T18:00',
    'gpulab reserve --gpu local --count 1 --from now --to +2h --note "lab 3"',
  ],
  async run(ctx, args) {
    const need = (name: string) => {
      const v = str(args, name);
      if (!v) throw usageError('reserve', `--${name} is required`);
      return v;
    };
    const flavor = need('gpu');
    need('count');
    const gpus = num('reserve', args, 'count', { integer: true, min: 1, max: 1024 })!;
    const now = new Date();
    const start = parseWhen('reserve', 'from', need('from'), now);
    const end = parseWhen('reserve', 'to', need('to'), now);
    if (end <= start) throw usageError('reserve', '--to must be after --from');
    const group = str(args, 'group');
    const note = str(args, 'note');
    const r = await ctx.client().reservations.create({
      flavor,
      gpus,
      start: start.toISOString(),
      end: end.toISOString(),
      ...(group ? { group } : {}),
      ...(note ? { note } : {}),
    });
    if (ctx.json) ctx.outJson(r);
    else {
      ctx.out(`reserved ${r.gpus} × ${r.flavor} from ${when(r.start)} to ${when(r.end)} (reservation ${r.id})`);
      ctx.out(`  holds ${hours(r.heldHours)} GPU-h of your quota; cancel: gpulab reservations cancel ${shortId(r.id)}`);
    }
    return EXIT.OK;
  },
};

function resolveReservation(items: Reservation[], ref: string): Reservation {
  const matches = items.filter((r) => r.id.startsWith(ref.toLowerCase()));
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0)
    throw new CliError(`no reservation of yours starts with ${ref}`, EXIT.NOT_FOUND, 'list them: gpulab reservations');
  throw new CliError(`${ref} matches ${matches.length} reservations`, EXIT.USAGE, 'give more characters of the id');
}

export const reservations: Command = {
  name: 'reservations',
  summary: 'list your GPU reservations, or cancel one (what it still holds goes back to your quota)',
  usage: '[list | cancel ID]',
  options: {},
  positionals: { min: 0, max: 2, completes: ['list', 'cancel'] },
  examples: ['gpulab reservations', 'gpulab reservations cancel 7c1d2e3f', 'gpulab reservations --json'],
  async run(ctx, args) {
    const [sub = 'list', ref] = args.positionals;
    const client = ctx.client();
    if (sub === 'cancel') {
      if (!ref) throw usageError('reservations', 'which reservation? gpulab reservations cancel ID');
      const r = resolveReservation((await client.reservations.list()).items, ref);
      const done = await client.reservations.cancel(r.id);
      if (ctx.json) ctx.outJson(done);
      else ctx.out(`reservation ${done.id} ${done.status}${done.closeReason ? ` (${done.closeReason})` : ''}`);
      return EXIT.OK;
    }
    if (sub !== 'list' || ref)
      throw usageError('reservations', `unknown subcommand ${JSON.stringify(sub)}; use list or cancel ID`);
    const { items } = await client.reservations.list();
    if (ctx.json) ctx.outJson({ items });
    else if (items.length === 0)
      ctx.out('no reservations — book GPUs with: gpulab reserve --gpu … --count … --from … --to …');
    else
      ctx.out(
        table(
          ['ID', 'STATUS', 'GPUS', 'FROM', 'TO', 'HELD (GPU-h)'],
          items.map((r) => [
            shortId(r.id),
            r.status,
            `${r.gpus}×${r.flavor}`,
            when(r.start),
            when(r.end),
            hours(r.heldHours),
          ]),
        ),
      );
    return EXIT.OK;
  },
};
