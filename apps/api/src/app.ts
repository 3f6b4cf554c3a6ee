import fastifyCookie from '@fastify/cookie';
import type { Logger } from '@gpulab/logger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { type ApiDeps, sessionSettings } from './deps';
import { authenticate } from './plugins/auth';
import { frameworkErrors, registerErrorHandler } from './plugins/errors';
import { registerMetrics } from './plugins/metrics';
import { registerOpenApi } from './plugins/openapi';
import { rateLimit } from './plugins/rate-limit';
import { registerWeb } from './plugins/web';
import { adminRoutes } from './routes/admin';
import { authRoutes } from './routes/auth';
import { datasetRoutes } from './routes/datasets';
import { flavorRoutes } from './routes/flavors';
import { groupRoutes } from './routes/groups';
import { healthRoutes } from './routes/health';
import { internalRoutes } from './routes/internal';
import { jobRoutes } from './routes/jobs';
import { meRoutes } from './routes/me';
import { quoteRoutes } from './routes/quote';
import { reportRoutes } from './routes/reports';
import { reservationRoutes } from './routes/reservations';
import { webhookRoutes } from './routes/webhooks';

export const API_VERSION = '1.0.0';

/**
 * Builds the HTTP app from its dependencies; main.ts and tests both use this. Plugins load in order: cookies, the
 * OpenAPI generator (it must see every route), then the routes with authentication.
 */
export function buildApp(deps: ApiDeps, logger: Logger): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: 1024 * 1024,
    frameworkErrors,
  });
  app.decorateRequest('principal', null);
  registerErrorHandler(app);
  app.register(fastifyCookie);
  registerOpenApi(app, API_VERSION);
  registerMetrics(app, deps);
  registerWeb(app);
  app.register(async (api) => {
    api.addHook('onRequest', async (req) => {
      req.principal = await authenticate(deps.db, req, deps.clock(), sessionSettings(deps).ttlMs);
      if (deps.rateLimit) await rateLimit(deps, req, deps.rateLimit);
    });
    healthRoutes(api, deps);
    authRoutes(api, deps);
    meRoutes(api, deps);
    jobRoutes(api, deps);
    flavorRoutes(api, deps);
    groupRoutes(api, deps);
    reportRoutes(api, deps);
    quoteRoutes(api, deps);
    reservationRoutes(api, deps);
    datasetRoutes(api, deps);
    webhookRoutes(api, deps);
    adminRoutes(api, deps);
    internalRoutes(api, deps);
  });
  return app;
}
