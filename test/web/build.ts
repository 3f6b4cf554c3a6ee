import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '@gpulab/testing';

export const WEB_DIR = path.join(REPO_ROOT, 'apps', 'web');
export const WEB_DIST = path.join(WEB_DIR, 'dist');

/** Everything the dashboard's bundle is built from (its sources and the shared modules it imports). */
const INPUTS = [
  'apps/web/src',
  'apps/web/index.html',
  'apps/web/vite.config.mts',
  'apps/web/package.json',
  'packages/sdk/src',
  'packages/core/src/job-spec.ts',
  'packages/core/src/status.ts',
  'packages/storage/src/dataset-keys.ts',
  'apps/trainer/src/data/extensions.ts',
];

function newest(p: string): number {
  if (!existsSync(p)) return 0;
  const s = statSync(p);
  if (!s.isDirectory()) return s.mtimeMs;
  return Math.max(s.mtimeMs, ...readdirSync(p).map((n) => newest(path.join(p, n))));
}

/**
 * Builds the dashboard (vite build, about a second) unless dist/ is newer than every input, so `npm test` and CI
 * always test the current sources without rebuilding needlessly on a re-run.
 */
export function ensureWebBuild(): void {
  const built = newest(path.join(WEB_DIST, 'index.html'));
  const source = Math.max(...INPUTS.map((p) => newest(path.join(REPO_ROOT, p))));
  if (built > source) return;
  execFileSync(
    process.execPath,
    [path.join(REPO_ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn'],
    {
      cwd: WEB_DIR,
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: 120_000,
    },
  );
}
