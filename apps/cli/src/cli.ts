/**
 * The command table and the dispatcher: parse, run, and turn any failure into a message on stderr (JSON with --json)
 * and an exit code (exit-codes.ts). No process globals here: main.ts wires stdin/stdout, the environment and Ctrl-C.
 */
import { type Command, parseCommandArgs, renderHelp } from './command';
import { login, logout, whoami } from './commands/auth';
import { completionCommand } from './commands/completion';
import { cancel, jobs, status } from './commands/jobs';
import { logs } from './commands/logs';
import { download, predict } from './commands/model';
import { quota, quote } from './commands/quota';
import { reservations, reserve } from './commands/reservations';
import { submit } from './commands/submit';
import type { Env } from './config';
import { Ctx, type Io } from './context';
import { CliError, EXIT, EXIT_CODES_HELP, toCliError } from './exit-codes';

export const VERSION = '0.1.0';

export const COMMANDS: readonly Command[] = [
  login,
  logout,
  whoami,
  submit,
  jobs,
  status,
  logs,
  cancel,
  download,
  predict,
  quota,
  quote,
  reserve,
  reservations,
  completionCommand(() => COMMANDS),
];

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return `gpulab — fine-tune image classifiers (ResNet18) on shared GPUs, within your GPU-hour quota

Usage: gpulab <command> [options]      gpulab <command> --help for its options and examples

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join('\n')}

Start here:
  gpulab login --url https://gpulab.example.edu
  gpulab submit ./my-dataset --epochs 10          # DIR/train/<class>/<image>, DIR/val/<class>/<image>
  gpulab predict last photo.jpg

Every command takes --json (results on stdout as JSON). Environment: GPULAB_URL and GPULAB_TOKEN override the saved
login ($XDG_CONFIG_HOME/gpulab/config.json).

${EXIT_CODES_HELP}
`;
}

export async function runCli(argv: string[], io: Io, env: Env, signal: AbortSignal): Promise<number> {
  const [name, ...rest] = argv;
  const json = rest.includes('--json');
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    io.stdout.write(topic ? renderHelp(topic) : mainHelp());
    return name ? EXIT.OK : EXIT.USAGE;
  }
  if (name === '--version' || name === 'version') {
    io.stdout.write(`gpulab ${VERSION}\n`);
    return EXIT.OK;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  const ctx = new Ctx(io, env, signal, json);
  try {
    if (!cmd) {
      const near = COMMANDS.filter((c) => editDistance(c.name, name) <= 2).map((c) => c.name);
      const hint = near.length ? `did you mean: ${near.join(', ')}?` : 'see: gpulab --help';
      return report(ctx, { message: `unknown command "${name}"`, exit: EXIT.USAGE, hint });
    }
    const args = parseCommandArgs(cmd, rest);
    if (args.values.help) {
      io.stdout.write(renderHelp(cmd));
      return EXIT.OK;
    }
    return await cmd.run(ctx, args);
  } catch (e) {
    if (signal.aborted && !(e instanceof CliError))
      return report(ctx, { message: 'interrupted', exit: EXIT.INTERRUPTED });
    const url = safeUrl(ctx);
    return report(ctx, toCliError(e, url));
  }
}

function safeUrl(ctx: Ctx): string {
  try {
    return ctx.settings.url;
  } catch {
    return '(unknown)';
  }
}

function report(ctx: Ctx, e: { message: string; exit: number; hint?: string | undefined; code?: string | undefined }) {
  if (ctx.json) {
    const error = {
      message: e.message,
      exit: e.exit,
      ...(e.code ? { code: e.code } : {}),
      ...(e.hint ? { hint: e.hint } : {}),
    };
    ctx.io.stderr.write(`${JSON.stringify({ error })}\n`);
  } else {
    ctx.io.stderr.write(`error: ${e.message}\n`);
    if (e.hint) ctx.io.stderr.write(`  → ${e.hint}\n`);
  }
  return e.exit;
}

/** Levenshtein distance, for "did you mean". */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
