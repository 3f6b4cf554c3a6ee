import { toCsv, USAGE_KEYS, type UsageKey, usageColumns } from '@gpulab/db';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { requireUser } from '../plugins/auth';
import { doc } from '../plugins/openapi';
import { IsoDate } from '../services/iso-date';
import { usageFilename, usageForCaller } from '../services/usage-report';

const UsageQuerySchema = z
  .object({
    by: z
      .string()
      .default('user')
      .transform((s, ctx) => {
        const keys = [
          ...new Set(
            s
              .split(',')
              .map((k) => k.trim())
              .filter(Boolean),
          ),
        ];
        const bad = keys.filter((k) => !(USAGE_KEYS as readonly string[]).includes(k));
        if (bad.length) {
          ctx.addIssue({ code: 'custom', message: `unknown key ${bad.join(', ')}; use ${USAGE_KEYS.join(', ')}` });
          return z.NEVER;
        }
        return keys as UsageKey[];
      }),
    from: IsoDate.optional(),
    to: IsoDate.optional(),
    group: z.string().trim().min(1).max(200).optional(),
    format: z.enum(['json', 'csv']).default('json'),
  })
  .superRefine((q, ctx) => {
    if (q.from && q.to && q.to.getTime() <= q.from.getTime())
      ctx.addIssue({ code: 'custom', path: ['to'], message: 'must be after from' });
  });

/** Usage reports from the hourly cost ledger, as JSON ({rows, totals}) or CSV. */
export function reportRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get(
    '/v1/reports/usage',
    doc(
      'reports',
      'Usage and spend by user, group, flavor and month (JSON or CSV)',
      { querystring: UsageQuerySchema },
      { produces: ['application/json', 'text/csv'] },
    ),
    async (req, reply) => {
      const who = requireUser(req);
      const q = UsageQuerySchema.parse(req.query);
      const { rows, totals } = await usageForCaller(deps, who, q);
      if (q.format === 'csv')
        return reply
          .header('content-type', 'text/csv; charset=utf-8')
          .header('content-disposition', `attachment; filename="${usageFilename(q)}"`)
          .send(toCsv(rows, usageColumns(q.by), { guardFormulas: true }));
      return {
        by: q.by,
        from: q.from?.toISOString() ?? null,
        to: q.to?.toISOString() ?? null,
        rows,
        totals,
      };
    },
  );
}
