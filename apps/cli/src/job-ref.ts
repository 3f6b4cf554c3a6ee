/**
 * A job as the user names it: its id, the first characters of it (as `gpulab jobs` shows), or `last` (the newest).
 * Prefixes are matched among your 200 newest jobs.
 */
import type { GpulabClient } from '@gpulab/sdk';
import { CliError, EXIT } from './exit-codes';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export async function resolveJobId(client: GpulabClient, ref: string): Promise<string> {
  const r = ref.trim().toLowerCase();
  if (UUID.test(r)) return r;
  if (r === 'last') {
    const page = await client.jobs.list({ limit: 1 });
    const first = page.items[0];
    if (!first) throw new CliError('you have no jobs yet', EXIT.NOT_FOUND, 'submit one: gpulab submit DIR');
    return first.id;
  }
  if (!/^[0-9a-f-]{4,36}$/.test(r))
    throw new CliError(
      `${JSON.stringify(ref)} is not a job id`,
      EXIT.USAGE,
      'give the id (or its first characters) that gpulab jobs shows, or "last"',
    );
  const page = await client.jobs.list({ limit: 200 });
  const matches = page.items.filter((j) => j.id.startsWith(r));
  if (matches.length === 1) return matches[0]!.id;
  if (matches.length === 0)
    throw new CliError(`no job of yours starts with ${ref}`, EXIT.NOT_FOUND, 'list your jobs with: gpulab jobs');
  throw new CliError(
    `${ref} matches ${matches.length} jobs: ${matches
      .slice(0, 5)
      .map((j) => j.id)
      .join(', ')}`,
    EXIT.USAGE,
    'give more characters of the id',
  );
}
