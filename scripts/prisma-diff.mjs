#!/usr/bin/env node
// Prints the SQL that takes the schema at a git revision (default HEAD) to the working tree's prisma/schema.prisma:
//   node scripts/prisma-diff.mjs [REV] > prisma/migrations/<timestamp>_<name>/migration.sql
// A datamodel-to-datamodel diff needs no shadow database (the offline JS schema engine cannot describe one: it fails
// with "Column type 'char' could not be deserialized"), only a DATABASE_URL naming an existing database.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const rev = process.argv[2] ?? 'HEAD';
const dir = mkdtempSync(join(tmpdir(), 'gpulab-schema-'));
try {
  const old = join(dir, 'schema.prisma');
  writeFileSync(old, execFileSync('git', ['show', `${rev}:prisma/schema.prisma`]));
  const args = ['--from-schema-datamodel', old, '--to-schema-datamodel', 'prisma/schema.prisma', '--script'];
  const res = spawnSync(process.execPath, ['scripts/prisma.mjs', 'migrate', 'diff', ...args], {
    stdio: 'inherit',
    env: { ...process.env, DATABASE_URL: process.env.DATABASE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres' },
  });
  process.exitCode = res.status ?? 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
