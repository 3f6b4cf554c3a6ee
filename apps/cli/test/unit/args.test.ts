/** Argument parsing, the spec built from flags, times, help and the command table. */
import { COMMANDS, editDistance, mainHelp } from '../../src/cli';
import { type Args, type Command, num, parseCommandArgs, renderHelp } from '../../src/command';
import { parseWhen } from '../../src/commands/reservations';
import { CliError, EXIT } from '../../src/exit-codes';
import { buildSpec, parseFreeze, parseSpecFile } from '../../src/spec';

const cmd = (name: string) => COMMANDS.find((c) => c.name === name)!;
const parse = (name: string, argv: string[]) => parseCommandArgs(cmd(name), argv);

function usage(f: () => unknown): CliError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    expect((e as CliError).exit).toBe(EXIT.USAGE);
    return e as CliError;
  }
  throw new Error('expected a usage error');
}

describe('parseCommandArgs', () => {
  it('parses options, short flags and positionals; --json and --help on every command', () => {
    const a = parse('submit', ['./data', '--epochs', '3', '-d', '--json', '--freeze=2']);
    expect(a.positionals).toEqual(['./data']);
    expect(a.values).toMatchObject({ epochs: '3', detach: true, json: true, freeze: '2' });
    expect(parse('logs', ['abc12345', '-f']).values.follow).toBe(true);
    for (const c of COMMANDS) expect(parseCommandArgs(c, ['--help']).values.help).toBe(true);
  });

  it('refuses unknown options, missing and extra arguments, naming the command help', () => {
    expect(usage(() => parse('jobs', ['--bogus'])).message).toBe("Unknown option '--bogus'");
    expect(usage(() => parse('jobs', ['--bogus'])).hint).toBe('see: gpulab jobs --help');
    expect(usage(() => parse('status', [])).message).toBe('missing argument: gpulab status JOB [--follow]');
    expect(usage(() => parse('cancel', ['a', 'b'])).message).toBe('unexpected argument "b"');
    expect(usage(() => parse('submit', ['d', '--epochs'])).message).toMatch(/--epochs/);
  });

  it('checks numbers: whole, positive, within bounds', () => {
    const args = (v: string): Args => ({ values: { n: v }, positionals: [] });
    expect(num('x', args('4'), 'n', { integer: true })).toBe(4);
    expect(num('x', args('0.5'), 'n', { positive: true })).toBe(0.5);
    expect(usage(() => num('x', args('1.5'), 'n', { integer: true })).message).toBe(
      '--n must be a whole number, got 1.5',
    );
    expect(usage(() => num('x', args('abc'), 'n')).message).toBe('--n must be a number, got "abc"');
    expect(usage(() => num('x', args('0'), 'n', { positive: true })).message).toMatch(/greater than 0/);
    expect(usage(() => num('x', args('900'), 'n', { max: 500 })).message).toBe('--n must be at most 500, got 900');
    expect(num('x', { values: {}, positionals: [] }, 'n')).toBeUndefined();
  });
});

describe('the job spec from flags', () => {
  it('maps every flag to the spec and leaves the rest to the server defaults', () => {
    const a = parse('submit', [
      'd',
      '--epochs',
      '10',
      '--gpu',
      'a10g',
      '--gpus',
      '2',
      '--max-hours',
      '1.5',
      '--freeze',
      '3',
      '--image-size',
      '128',
      '--lr',
      '0.01',
      '--batch-size',
      '16',
      '--name',
      'flowers v2',
      '--group',
      'ml-101',
      '--backend',
      'wasm',
    ]);
    expect(buildSpec('submit', a)).toEqual({
      epochs: 10,
      resources: { flavor: 'a10g', gpus: 2, maxHours: 1.5 },
      freeze: { mode: 'partial', trainableStages: 3 },
      imageSize: 128,
      optimizer: { type: 'sgd', lr: 0.01 },
      batchSize: 16,
      name: 'flowers v2',
      group: 'ml-101',
      backend: 'wasm',
    });
    expect(buildSpec('submit', parse('submit', ['d']))).toEqual({});
  });

  it('flags override a SPEC.json, merging into its optimizer and resources', () => {
    const base = parseSpecFile(
      'submit',
      'spec.json',
      JSON.stringify({ epochs: 4, optimizer: { type: 'adamw', lr: 0.1 }, resources: { flavor: 'local', gpus: 1 } }),
    );
    const spec = buildSpec('submit', parse('submit', ['spec.json', '--lr', '0.002', '--gpus', '2']), base);
    expect(spec).toEqual({
      epochs: 4,
      optimizer: { type: 'adamw', lr: 0.002 },
      resources: { flavor: 'local', gpus: 2 },
    });
    expect(usage(() => parseSpecFile('submit', 's.json', '{oops')).message).toMatch(/^s\.json is not valid JSON/);
    expect(usage(() => parseSpecFile('submit', 's.json', '[1]')).message).toMatch(/must hold a JSON object/);
  });

  it('--freeze: head, 1-4, full (none and all mean full); anything else is a usage error', () => {
    expect(parseFreeze('submit', 'head')).toEqual({ mode: 'head' });
    expect(parseFreeze('submit', 'FULL')).toEqual({ mode: 'full' });
    expect(parseFreeze('submit', 'none')).toEqual({ mode: 'full' });
    expect(parseFreeze('submit', '4')).toEqual({ mode: 'partial', trainableStages: 4 });
    for (const bad of ['0', '5', 'layer4', ''])
      expect(usage(() => parseFreeze('submit', bad)).message).toMatch(/--freeze must be head/);
  });

  it('refuses bad values before anything is sent', () => {
    const bad = (argv: string[]) => usage(() => buildSpec('submit', parse('submit', ['d', ...argv]))).message;
    expect(bad(['--epochs', '0'])).toBe('--epochs must be at least 1, got 0');
    expect(bad(['--gpu', 'A10G'])).toMatch(/--gpu must be a flavor name/);
    expect(bad(['--image-size', '8'])).toBe('--image-size must be at least 16, got 8');
    expect(bad(['--backend', 'cuda'])).toMatch(/--backend must be one of auto, tensorflow/);
    expect(bad(['--max-hours=-1'])).toMatch(/greater than 0/);
    expect(bad(['--max-hours', '-1'])).toBe(
      'option --max-hours needs a value (write --max-hours=-1 for a value starting with -)',
    );
  });
});

describe('times for reservations', () => {
  const now = new Date('2026-05-04T12:00:00Z');
  it('takes ISO times, now, and +N minutes/hours/days', () => {
    expect(parseWhen('reserve', 'from', '2026-05-04T14:00:00Z', now).toISOString()).toBe('2026-05-04T14:00:00.000Z');
    expect(parseWhen('reserve', 'from', 'now', now)).toBe(now);
    expect(parseWhen('reserve', 'to', '+90m', now).toISOString()).toBe('2026-05-04T13:30:00.000Z');
    expect(parseWhen('reserve', 'to', '+2h', now).toISOString()).toBe('2026-05-04T14:00:00.000Z');
    expect(parseWhen('reserve', 'to', '+1d', now).toISOString()).toBe('2026-05-05T12:00:00.000Z');
    expect(usage(() => parseWhen('reserve', 'from', 'tomorrow', now)).message).toMatch(/--from must be an ISO time/);
    expect(usage(() => parseWhen('reserve', 'from', '2026-13-45', now)).message).toMatch(/ISO time/);
  });
});

describe('help', () => {
  it('every command has a summary, usage, and at least one example; the main help lists them and the exit codes', () => {
    const help = mainHelp();
    for (const c of COMMANDS) {
      expect(c.summary.length).toBeGreaterThan(10);
      expect(c.examples.length).toBeGreaterThan(0);
      const h = renderHelp(c);
      expect(h).toContain(`Usage: gpulab ${c.name}`);
      expect(h).toMatch(/Examples:\n {2}\S/);
      expect(h).toContain('--json');
      expect(help).toContain(`  ${c.name} `);
    }
    expect(help).toMatch(/130 +interrupted/);
    const names = COMMANDS.map((c: Command) => c.name);
    for (const n of ['login', 'whoami', 'submit', 'jobs', 'status', 'logs', 'cancel', 'download', 'predict'])
      expect(names).toContain(n);
    for (const n of ['quota', 'quote', 'reserve', 'reservations', 'completion']) expect(names).toContain(n);
  });

  it('suggests a command for a typo', () => {
    expect(editDistance('sbumit', 'submit')).toBe(2);
    expect(editDistance('status', 'status')).toBe(0);
    expect(editDistance('', 'abc')).toBe(3);
  });
});
