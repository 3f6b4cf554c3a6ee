import path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg-cli';
import { defineConfig } from 'prisma/config';

/**
 * The Prisma CLI runs offline with the JavaScript schema engine: it talks to Postgres through the pg driver adapter
 * (v7 of the adapter, aliased as @prisma/adapter-pg-cli, which the 6.19 CLI's migration engine can read; the runtime
 * client uses adapter-pg 6.19). DATABASE_URL must name an existing database.
 */
export default defineConfig({
  experimental: { adapter: true },
  schema: path.join('prisma', 'schema.prisma'),
  migrations: { path: path.join('prisma', 'migrations') },
  engine: 'js',
  adapter: async () =>
    new PrismaPg({ connectionString: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/gpulab' }),
});
