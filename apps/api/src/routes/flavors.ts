import { GpulabError } from '@gpulab/core';
import { audit } from '@gpulab/db';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ApiDeps } from '../deps';
import { requireUser } from '../plugins/auth';
import { doc } from '../plugins/openapi';

const NameParams = z.object({ name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'must be a lowercase flavor name') });
const PriceBody = z.object({ pricePerGpuHour: z.number().finite().min(0).max(1_000_000) }).strict();

/**
 * GPU types with their price per GPU-hour and capacity (the scheduler sets capacity from its launcher: slots in
 * local mode, node allocatable in Kubernetes) and how many GPUs are busy now. Admins set prices.
 */
export function flavorRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get('/v1/flavors', doc('cluster', 'GPU types: price per GPU-hour, capacity, GPUs in use'), async (req) => {
    requireUser(req);
    const [flavors, busy] = await Promise.all([
      deps.db.flavor.findMany({ orderBy: { name: 'asc' } }),
      deps.db.job.groupBy({
        by: ['flavor'],
        where: { status: { in: ['ADMITTED', 'LAUNCHING', 'RUNNING', 'RETRYING'] } },
        _sum: { gpus: true },
      }),
    ]);
    const inUse = new Map(busy.map((b) => [b.flavor, b._sum.gpus ?? 0]));
    return {
      items: flavors.map((f) => ({
        name: f.name,
        pricePerGpuHour: Number(f.rateMicros) / 1e6,
        rateMicrosPerGpuHour: Number(f.rateMicros),
        capacity: f.capacity,
        inUse: inUse.get(f.name) ?? 0,
      })),
    };
  });

  /** Sets a flavor's price (new cost rows use it; hours already metered keep the rate they were charged at). */
  app.put(
    '/v1/flavors/:name',
    doc('admin', 'Set the price of a GPU type (admins)', { params: NameParams, body: PriceBody }),
    async (req) => {
      const who = requireUser(req);
      if (who.role !== 'admin') throw new GpulabError('FORBIDDEN', 'only admins set GPU prices');
      const { name } = NameParams.parse(req.params);
      const { pricePerGpuHour } = PriceBody.parse(req.body ?? {});
      const rateMicros = BigInt(Math.round(pricePerGpuHour * 1e6));
      const f = await deps.db.flavor.upsert({
        where: { name },
        create: { name, rateMicros, capacity: 0 },
        update: { rateMicros },
      });
      await audit(deps.db, {
        actorId: who.userId,
        action: 'flavor.price',
        targetType: 'flavor',
        targetId: name,
        data: { rateMicros: Number(rateMicros) },
        at: deps.clock(),
      });
      return { name: f.name, pricePerGpuHour: Number(f.rateMicros) / 1e6, capacity: f.capacity };
    },
  );
}
