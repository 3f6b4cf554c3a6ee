import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const ADMIN_URL = process.env.GPULAB_TEST_PG_ADMIN_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

function urlFor(database: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Hash of the committed migrations: a template database is reused only while they are unchanged. */
function migrationsHash(): string {
  const dir = path.join(REPO_ROOT, 'prisma', 'migrations');
  const h = createHash('sha256');
  for (const name of readdirSync(dir).sort()) {
    if (name.endsWith('.toml')) continue;
    h.update(name);
    h.update(readFileSync(path.join(dir, name, 'migration.sql')));
  }
  return h.digest('hex').slice(0, 12);
}

/**
 * Creates (once per migration set) a template database migrated with `prisma migrate deploy` — the committed
 * migrations, exactly as production applies them. Test databases are cheap copies of it.
 */
export async function ensureTemplateDatabase(): Promise<string> {
  const name = `gpulab_tpl_${migrationsHash()}`;
  const exists = await admin((c) => c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]));
  if (exists.rowCount) return name;
  const building = `${name}_b${process.pid}`;
  await admin((c) => c.query(`CREATE DATABASE "${building}"`));
  const res = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'prisma.mjs'), 'migrate', 'deploy'], {
    cwd: REPO_ROOT,
    env: { ...process.env, DATABASE_URL: urlFor(building) },
    encoding: 'utf8',
  });
  if (res.status !== 0) {
    await admin((c) => c.query(`DROP DATABASE IF EXISTS "${building}"`));
    throw new Error(`prisma migrate deploy failed:\n${res.stdout}\n${res.stderr}`);
  }
  await admin(async (c) => {
    try {
      await c.query(`ALTER DATABASE "${building}" RENAME TO "${name}"`);
    } catch {
      await c.query(`DROP DATABASE IF EXISTS "${building}"`); // another run won the race
    }
  });
  return name;
}

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

/** A fresh, migrated database for one test file. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const template = await ensureTemplateDatabase();
  const name = `gpulab_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`));
  return {
    name,
    url: urlFor(name),
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined),
  };
}

/** Drops test databases left behind by crashed runs (older than an hour is not knowable; drop all but templates). */
export async function dropStaleTestDatabases(): Promise<number> {
  return admin(async (c) => {
    const res = await c.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE 'gpulab_t\\_%'");
    for (const r of res.rows) await c.query(`DROP DATABASE IF EXISTS "${r.datname}" WITH (FORCE)`);
    return res.rowCount ?? 0;
  });
}
