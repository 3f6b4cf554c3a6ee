import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance, FastifySchema } from 'fastify';
import type { ZodTypeAny } from 'zod';
import { zodToJsonSchema } from 'zod-to-json-schema';

/**
 * The OpenAPI 3.1 document is generated from the routes' own zod schemas: each route declares them in its Fastify
 * `schema` (with `summary` and `tags`) and its handler parses its input with the very same objects, so the document
 * cannot drift from what the API accepts. Validation stays in the handlers (so every error is our problem+json
 * naming the field): Fastify's validator is a pass-through. Served as JSON at /openapi.json and browsable at /docs.
 */
export function registerOpenApi(app: FastifyInstance, version: string): void {
  app.setValidatorCompiler(() => (data) => ({ value: data }));
  app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'gpulab API',
        version,
        description:
          'Fine-tune image classifiers on a shared GPU cluster within a GPU-hour budget. Errors are RFC 9457 ' +
          'application/problem+json with a stable `code` and the offending `field`.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'personal API token (gpl_…) or job token (gpj_…)' },
          session: {
            type: 'apiKey',
            in: 'cookie',
            name: 'gpulab_session',
            description: 'dashboard sign-in; unsafe methods also need x-csrf-token',
          },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
    transform: ({ schema, url }) => ({ schema: toJsonSchemas(schema), url }),
  });
  app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

const PARTS = ['body', 'querystring', 'params', 'headers'] as const;

function toJsonSchemas(schema: FastifySchema | undefined): FastifySchema {
  if (!schema) return {};
  const out: Record<string, unknown> = { ...schema };
  for (const part of PARTS) {
    const z = (schema as Record<string, unknown>)[part] as ZodTypeAny | undefined;
    if (z && typeof (z as { safeParse?: unknown }).safeParse === 'function') out[part] = convert(z);
  }
  return out as FastifySchema;
}

function convert(z: ZodTypeAny): object {
  const json = zodToJsonSchema(z, {
    target: 'jsonSchema2019-09',
    $refStrategy: 'none',
    effectStrategy: 'input',
    pipeStrategy: 'input',
  }) as Record<string, unknown>;
  delete json.$schema;
  return json;
}

/** Route options documenting a route: its tag, one-line summary and the zod schemas its handler parses. */
export function doc(
  tag: string,
  summary: string,
  parts: { body?: ZodTypeAny; querystring?: ZodTypeAny; params?: ZodTypeAny } = {},
  extra: { description?: string; produces?: string[]; security?: Record<string, string[]>[] } = {},
): { schema: FastifySchema } {
  return { schema: { tags: [tag], summary, ...parts, ...extra } as FastifySchema };
}
