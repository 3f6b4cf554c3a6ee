import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/** The bodies of the ```sh runnable blocks of a Markdown file, in order. */
export function runnableBlocks(markdown: string): string[] {
  const blocks: string[] = [];
  const re = /^```sh runnable\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(markdown); m; m = re.exec(markdown)) blocks.push(m[1]!);
  return blocks;
}

/**
 * Runs a guide's runnable blocks in order in one `bash -euo pipefail` (a later block sees an earlier one's
 * variables), each preceded by an `::block N` marker line; rejects with the output when one fails.
 */
export async function runBlocks(
  name: string,
  blocks: string[],
  o: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<string> {
  const script = blocks.map((b, i) => `echo "::block ${i + 1}"\n${b}`).join('\n');
  try {
    const { stdout } = await promisify(execFile)('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: o.cwd,
      env: o.env,
      encoding: 'utf8',
      timeout: o.timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${name}: ${err.message}\n--- stdout\n${err.stdout}\n--- stderr\n${err.stderr}`);
  }
}
