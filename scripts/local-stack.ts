import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { Client } from 'pg';

export const REPO_ROOT = path.resolve(__dirname, '..');

/** A loopback port that is free now: `preferred` if it is, else any. */
export async function freePort(preferred: number): Promise<number> {
  const tryPort = (p: number) =>
    new Promise<number | null>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(null));
      srv.listen(p, '127.0.0.1', () => {
        const addr = srv.address();
        const port = typeof addr === 'object' && addr ? addr.port : null;
        srv.close(() => resolve(port));
      });
    });
  return (await tryPort(preferred)) ?? (await tryPort(0)) ?? preferred;
}

/** Creates the database named in `url` if it does not exist, then applies the committed migrations. */
export async function prepareDatabase(url: string): Promise<void> {
  const u = new URL(url);
  const name = u.pathname.slice(1);
  const adminUrl = new URL(url);
  adminUrl.pathname = '/postgres';
  const c = new Client({ connectionString: adminUrl.toString() });
  await c.connect();
  const exists = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  if (!exists.rowCount) await c.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
  await c.end();
  await run(process.execPath, [path.join(REPO_ROOT, 'scripts', 'prisma.mjs'), 'migrate', 'deploy'], {
    ...process.env,
    DATABASE_URL: url,
  });
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'inherit'] });
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`))));
  });
}

export interface LocalServices {
  env: NodeJS.ProcessEnv;
  apiUrl: string;
  s3Endpoint: string;
  stop(): Promise<void>;
}

/**
 * Starts the API (with its embedded S3) and the scheduler (local launcher) as child processes, logging to
 * `<dataDir>/api.log` and `<dataDir>/scheduler.log`, and waits until the API is ready.
 */
export async function startLocalServices(env: NodeJS.ProcessEnv, logTo: (name: string) => NodeJS.WritableStream) {
  const tsx = [process.execPath, '--import', 'tsx'];
  const procs: ChildProcess[] = [];
  const start = (name: string, entry: string) => {
    const p = spawn(tsx[0]!, [...tsx.slice(1), entry], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = logTo(name);
    p.stdout?.pipe(out);
    p.stderr?.pipe(out);
    procs.push(p);
    return p;
  };
  const api = start('api', 'apps/api/src/main.ts');
  const apiUrl = `http://127.0.0.1:${env.GPULAB_API_PORT}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (api.exitCode !== null) throw new Error(`the API exited with code ${api.exitCode}; see its log`);
    const ok = await fetch(`${apiUrl}/readyz`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) break;
    if (Date.now() > deadline) throw new Error('the API did not become ready within 60 s; see its log');
    await new Promise((r) => setTimeout(r, 300));
  }
  const scheduler = start('scheduler', 'apps/scheduler/src/main.ts');
  // the scheduler registers its GPU flavor (capacity from its launcher) once it leads: jobs are accepted after that
  const pg = new Client({ connectionString: env.DATABASE_URL });
  await pg.connect();
  try {
    const flavor = env.GPULAB_LOCAL_FLAVOR ?? 'local';
    for (;;) {
      if (scheduler.exitCode !== null)
        throw new Error(`the scheduler exited with code ${scheduler.exitCode}; see its log`);
      const r = await pg.query('SELECT 1 FROM flavors WHERE name = $1 AND capacity > 0', [flavor]);
      if (r.rowCount) break;
      if (Date.now() > deadline + 60_000) throw new Error('the scheduler did not start within 60 s; see its log');
      await new Promise((res) => setTimeout(res, 300));
    }
  } finally {
    await pg.end();
  }
  return {
    env,
    apiUrl,
    s3Endpoint: `http://127.0.0.1:${env.GPULAB_S3_EMBEDDED_PORT}`,
    async stop() {
      await Promise.all(
        procs.map(
          (p) =>
            new Promise<void>((resolve) => {
              if (p.exitCode !== null) return resolve();
              p.once('exit', () => resolve());
              p.kill('SIGTERM');
              setTimeout(() => p.kill('SIGKILL'), 15_000).unref();
            }),
        ),
      );
    },
  } satisfies LocalServices;
}
