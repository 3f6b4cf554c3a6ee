import fastifyCookie from '@fastify/cookie';
import type { Logger } from '@gpulab/logger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { type ApiDeps, sessionSettings } from './deps';
import { authenticate } from './plugins/auth';
import { registerErrorHandler } from './plugins/errors';
import { authRoutes } from './routes/auth';
import { flavorRoutes } from './routes/flavors';
import { groupRoutes } from './routes/groups';
import { healthRoutes } from './routes/health';
import { internalRoutes } from './routes/internal';
import { jobRoutes } from './routes/jobs';
import { meRoutes } from './routes/me';
import { quoteRoutes } from './routes/quote';
import { reportRoutes } from './routes/reports';
import { reservationRoutes } from './routes/reservations';

/** Builds the HTTP app from its dependencies; main.ts and tests both use this. */
export function buildApp(deps: ApiDeps, logger: Logger): FastifyInstance {
  const app: FastifyInstance = Fastify({ loggerInstance: logger as FastifyBaseLogger, bodyLimit: 1024 * 1024 });
  app.decorateRequest('principal', null);
  app.register(fastifyCookie);
  registerErrorHandler(app);
  app.addHook('onRequest', async (req) => {
    req.principal = await authenticate(deps.db, req, deps.clock(), sessionSettings(deps).ttlMs);
  });
  healthRoutes(app, deps);
  authRoutes(app, deps);
  meRoutes(app, deps);
  jobRoutes(app, deps);
  flavorRoutes(app, deps);
  groupRoutes(app, deps);
  reportRoutes(app, deps);
  quoteRoutes(app, deps);
  reservationRoutes(app, deps);
  internalRoutes(app, deps);
  return app;
}
