/**
 * The guides' runnable examples run: every fenced block marked ```sh runnable in a guide is run, in order and in
 * one bash process per guide (so a later block sees an earlier block's variables), against a live API on a fresh
 * database, with only GPULAB_URL and an administrator's token given. A block that fails fails the test with its
 * output.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { buildApp } from '@gpulab/api/src/app';
import { createDb, createUserToken, type Db } from '@gpulab/db';
import { createLogger } from '@gpulab/logger';
import { createRedis, DispatchQueue } from '@gpulab/queue';
import {
  createTestDatabase,
  REPO_ROOT,
  startTestS3,
  TEST_POLICY,
  TEST_REDIS_URL,
  type TestDatabase,
  type TestS3,
  testRedisPrefix,
} from '@gpulab/testing';
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';

/** Guides whose runnable blocks need only the API (the student guide's run the whole stack in test/e2e). */
const GUIDES = ['docs/instructor-guide.md'];

let tdb: TestDatabase;
let db: Db;
let s3: TestS3;
let redis: Redis;
let queue: DispatchQueue;
let app: FastifyInstance;
let url: string;
let adminToken: string;

beforeAll(async () => {
  tdb = await createTestDatabase();
  db = createDb(tdb.url);
  s3 = await startTestS3();
  redis = createRedis(TEST_REDIS_URL);
  queue = new DispatchQueue(redis, testRedisPrefix('docs'));
  app = buildApp(
    {
      db,
      redis,
      queue,
      s3: s3.client,
      bucket: s3.bucket,
      clock: () => new Date(),
      maxAttempts: 3,
      policy: TEST_POLICY,
    },
    createLogger({ name: 'test', level: 'silent' }),
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const admin = await db.user.create({ data: { email: 'admin@uni.edu', name: 'Admin', role: 'admin' } });
  adminToken = (await createUserToken(db, admin.id, 'docs')).secret;
});
afterAll(async () => {
  await app.close();
  await queue.close();
  redis.disconnect();
  await s3.close();
  await db.$disconnect();
  await tdb.drop();
});

/** The bodies of the ```sh runnable blocks of a Markdown file, in order. */
export function runnableBlocks(markdown: string): string[] {
  const blocks: string[] = [];
  const re = /^```sh runnable\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) blocks.push(m[1]!);
  return blocks;
}

it.each(GUIDES)('%s: every runnable block runs', async (guide) => {
  const blocks = runnableBlocks(readFileSync(path.join(REPO_ROOT, guide), 'utf8'));
  expect(blocks.length).toBeGreaterThan(3);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gpulab-docs-'));
  const script = blocks.map((b, i) => `echo "::block ${i + 1}"\n${b}`).join('\n');
  try {
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: dir, GPULAB_URL: url, GPULAB_ADMIN_TOKEN: adminToken },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(stdout.match(/^::block \d+$/gm)).toHaveLength(blocks.length);
    expect(stdout).toMatch(/prof@uni\.edu is instructor/);
    expect(stdout).toMatch(/ada@uni\.edu\t10 h granted/);
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${guide}: ${err.message}\n--- stdout\n${err.stdout}\n--- stderr\n${err.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
