/**
 * What a command is (name, options, positionals, help, examples, run) and how its arguments are parsed: node:util
 * parseArgs, strict, with every failure a usage error that names the command's --help.
 */
import { parseArgs } from 'node:util';
import type { Ctx } from './context';
import { CliError, EXIT } from './exit-codes';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** Placeholder in help, e.g. N, DIR, ISO. */
  arg?: string;
  help: string;
  /** Values offered by shell completion. */
  choices?: readonly string[];
}

/** What a positional argument completes to in the shell. */
export type Completes = 'jobs' | 'files' | 'dirs' | 'none' | readonly string[];

export interface Command {
  name: string;
  summary: string;
  /** After `gpulab <name> `, e.g. "DIR [options]". */
  usage: string;
  /** Longer text shown by --help, optional. */
  details?: string;
  options: Record<string, OptionSpec>;
  positionals: { min: number; max: number; completes?: Completes };
  examples: string[];
  run(ctx: Ctx, args: Args): Promise<number>;
}

export type Values = Record<string, string | boolean | undefined>;

export interface Args {
  values: Values;
  positionals: string[];
}

/** Options every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  json: { type: 'boolean', help: 'machine-readable output on stdout (errors as JSON on stderr)' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

export function usageError(cmd: string, message: string): CliError {
  return new CliError(message, EXIT.USAGE, `see: gpulab ${cmd} --help`);
}

export function parseCommandArgs(cmd: Command, argv: string[]): Args {
  const all = { ...cmd.options, ...GLOBAL_OPTIONS };
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, o] of Object.entries(all))
    options[name] = o.short ? { type: o.type, short: o.short } : { type: o.type };
  let parsed: { values: Record<string, unknown>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    throw usageError(cmd.name, cleanParseError((e as Error).message));
  }
  const values: Values = {};
  for (const [k, v] of Object.entries(parsed.values)) values[k] = v as string | boolean;
  const args = { values, positionals: parsed.positionals };
  if (values.help) return args;
  const n = args.positionals.length;
  if (n < cmd.positionals.min)
    throw usageError(cmd.name, `missing argument: gpulab ${cmd.name} ${cmd.usage}`.trimEnd());
  if (n > cmd.positionals.max)
    throw usageError(cmd.name, `unexpected argument ${JSON.stringify(args.positionals[cmd.positionals.max])}`);
  return args;
}

function cleanParseError(message: string): string {
  const ambiguous = /^Option '(--[^']+)' argument is ambiguous/.exec(message);
  if (ambiguous) return `option ${ambiguous[1]} needs a value (write ${ambiguous[1]}=-1 for a value starting with -)`;
  // "Unknown option '--foo'. To specify a positional argument starting with a '-', place it at the end…"
  return message
    .replace(/\. To specify a positional argument.*$/s, '')
    .replace(/^Option '(.*)' argument missing$/, 'option $1 needs a value');
}

export function str(args: Args, name: string): string | undefined {
  const v = args.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function flag(args: Args, name: string): boolean {
  return args.values[name] === true;
}

/** A number option within bounds; `integer` refuses fractions. */
export function num(
  cmd: string,
  args: Args,
  name: string,
  o: { min?: number; max?: number; integer?: boolean; positive?: boolean } = {},
): number | undefined {
  const raw = str(args, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  const what = o.integer ? 'a whole number' : 'a number';
  if (raw.trim() === '' || !Number.isFinite(n))
    throw usageError(cmd, `--${name} must be ${what}, got ${JSON.stringify(raw)}`);
  if (o.integer && !Number.isInteger(n)) throw usageError(cmd, `--${name} must be ${what}, got ${raw}`);
  if (o.positive && n <= 0) throw usageError(cmd, `--${name} must be greater than 0, got ${raw}`);
  if (o.min !== undefined && n < o.min) throw usageError(cmd, `--${name} must be at least ${o.min}, got ${raw}`);
  if (o.max !== undefined && n > o.max) throw usageError(cmd, `--${name} must be at most ${o.max}, got ${raw}`);
  return n;
}

export function renderHelp(cmd: Command): string {
  const all = { ...cmd.options, ...GLOBAL_OPTIONS };
  const rows = Object.entries(all).map(([name, o]) => {
    const left = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : ''}`;
    return [left, o.help] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  const lines = [
    `gpulab ${cmd.name} — ${cmd.summary}`,
    '',
    `Usage: gpulab ${cmd.name} ${cmd.usage}`.trimEnd(),
    ...(cmd.details ? ['', cmd.details] : []),
    '',
    'Options:',
    ...rows.map(([l, h]) => `  ${l.padEnd(width)}${h}`),
    '',
    'Examples:',
    ...cmd.examples.map((e) => `  ${e}`),
  ];
  return `${lines.join('\n')}\n`;
}
