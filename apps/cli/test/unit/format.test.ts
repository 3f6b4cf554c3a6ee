/** Formatting: the epoch line, sizes, hours, tables, progress, the followed job's output, errors. */
import { GpulabApiError, type Job } from '@gpulab/sdk';
import { CliError, EXIT, toCliError } from '../../src/exit-codes';
import { JobPrinter } from '../../src/follow';
import { bar, bytes, duration, epochLine, hours, pendingLine, relative, table } from '../../src/format';
import { jobDetail } from '../../src/job-view';
import { ProgressLine } from '../../src/progress';

const metric = (epoch: number, attempt = 1) => ({
  attempt,
  epoch,
  epochs: 3,
  trainLoss: 0.51234,
  valLoss: 1 / 3,
  valAcc: 0.87654,
  lr: 0.001,
  seconds: 2,
  perClassAcc: null,
  confusion: null,
});

function job(over: Partial<Job> = {}): Job {
  return {
    id: '3f2a9c1e-0000-4000-8000-000000000001',
    userId: 'u',
    groupId: 'g',
    name: 'flowers',
    status: 'RUNNING',
    statusReason: 'started',
    statusMessage: null,
    pending: null,
    priority: 0,
    maxRuntimeSeconds: 1800,
    reservationId: null,
    attempt: 1,
    maxAttempts: 3,
    flavor: 'a10g',
    gpus: 1,
    backend: 'wasm',
    spec: { dataset: { uri: 's3://b/d/' } },
    createdAt: '2026-05-04T12:00:00Z',
    admittedAt: null,
    startedAt: null,
    finishedAt: null,
    hold: { gpuSeconds: 1800, gpuHours: 0.5 },
    cost: { gpuSeconds: 36, gpuHours: 0.01, amountMicros: 20_000, amount: 0.02, ledger: [] },
    summary: null,
    transitions: [],
    attempts: [],
    metrics: [],
    artifacts: [],
    ...over,
  };
}

describe('formatting', () => {
  it('the epoch line is exactly the seed recipe format', () => {
    expect(epochLine(metric(2))).toBe('Epoch 2/3 | Train Loss: 0.5123 | Val Loss: 0.3333 | Val Acc: 87.65%');
  });

  it('sizes, hours, durations, times', () => {
    expect([bytes(999), bytes(1000), bytes(3_456_789), bytes(250e9)]).toEqual(['999 B', '1.0 kB', '3.5 MB', '250 GB']);
    expect([hours(0), hours(0.0014), hours(0.5), hours(12.34)]).toEqual(['0', '0.0014', '0.50', '12.3']);
    expect([duration(5), duration(65), duration(3725), duration(200_000)]).toEqual(['5s', '1m 05s', '1h 02m', '2d 7h']);
    const now = new Date('2026-05-04T12:00:00Z');
    expect(relative('2026-05-04T12:03:05Z', now)).toMatch(/^in 3m 05s \(/);
    expect(relative('2026-05-04T11:55:00Z', now)).toMatch(/^5m 00s ago \(/);
  });

  it('tables align columns; bars fill', () => {
    expect(
      table(
        ['ID', 'NAME'],
        [
          ['a', 'x'],
          ['bbbb', 'yy'],
        ],
      ),
    ).toBe('ID    NAME\na     x\nbbbb  yy');
    expect(bar(0.5, 10)).toBe('[#####.....]');
    expect(bar(2, 4)).toBe('[####]');
    expect(bar(Number.NaN, 4)).toBe('[....]');
  });

  it('why a job waits: reason, message, position, estimated start', () => {
    const now = new Date('2026-05-04T12:00:00Z');
    const p = {
      reason: 'capacity',
      message: 'all 4 a10g GPUs busy',
      position: 2,
      estimatedStartAt: '2026-05-04T12:10:00Z',
    };
    expect(pendingLine(p, now)).toMatch(
      /^waiting \(capacity\): all 4 a10g GPUs busy — position 2 in the queue, estimated start in 10m 00s \(/,
    );
    expect(pendingLine({ reason: 'quota', message: null, position: null, estimatedStartAt: null }, now)).toBe(
      'waiting (quota) — no start estimate until quota frees up (see: gpulab quota)',
    );
  });

  it('progress redraws in place on a terminal and prints nothing otherwise', () => {
    const out: string[] = [];
    const tty = new ProgressLine({ write: (s: string) => out.push(s), isTTY: true, columns: 60 }, true);
    tty.update('uploading', 5, 10, '5/10 files', true);
    expect(out[0]).toMatch(/^\ruploading \[#{10}\.{10}\] {2}50% 5\/10 files/);
    tty.finish('done');
    expect(out.at(-1)).toBe('done\n');
    const quiet: string[] = [];
    new ProgressLine({ write: (s: string) => quiet.push(s) }, false).update('x', 1, 2, '', true);
    expect(quiet).toEqual([]);
  });
});

describe('following a job', () => {
  it('prints status changes, each epoch once with the cost so far, and the outcome with the model', () => {
    const lines: string[] = [];
    const p = new JobPrinter((l) => lines.push(l), 'QUEUED');
    const now = new Date('2026-05-04T12:00:00Z');
    const pending = { reason: 'capacity', message: 'busy', position: 1, estimatedStartAt: null };
    p.update(job({ status: 'QUEUED', pending }), now);
    p.update(job({ status: 'QUEUED', pending }), now);
    p.update(job({ metrics: [metric(1)] }), now);
    p.update(job({ metrics: [metric(1), metric(2)] }), now);
    p.finish(
      job({
        status: 'SUCCEEDED',
        statusMessage: 'training finished',
        metrics: [metric(1), metric(2), metric(3)],
        artifacts: [
          { kind: 'model', key: 'jobs/x/model/weights.safetensors', bytes: 44_800_000 },
          { kind: 'model', key: 'jobs/x/model/labels.json', bytes: 20 },
          { kind: 'metrics', key: 'jobs/x/metrics.json', bytes: 400 },
        ],
      }),
    );
    expect(lines).toEqual([
      'waiting (capacity): busy — position 1 in the queue',
      'status: RUNNING',
      'Epoch 1/3 | Train Loss: 0.5123 | Val Loss: 0.3333 | Val Acc: 87.65%',
      '  cost so far: 0.0100 GPU-h (36 GPU-s), 0.0200',
      'Epoch 2/3 | Train Loss: 0.5123 | Val Loss: 0.3333 | Val Acc: 87.65%',
      '  cost so far: 0.0100 GPU-h (36 GPU-s), 0.0200',
      'Epoch 3/3 | Train Loss: 0.5123 | Val Loss: 0.3333 | Val Acc: 87.65%',
      'job 3f2a9c1e-0000-4000-8000-000000000001 SUCCEEDED — training finished',
      '  cost: 0.0100 GPU-h (36 GPU-s), 0.0200',
      '  model: jobs/3f2a9c1e-0000-4000-8000-000000000001/model/ (2 files, 44.8 MB)',
      '  download it: gpulab download 3f2a9c1e-0000-4000-8000-000000000001    classify images: gpulab predict 3f2a9c1e-0000-4000-8000-000000000001 IMAGE…',
    ]);
  });

  it('prints why it waits again only when the reason, position or estimate (by over 5 minutes) changes', () => {
    const lines: string[] = [];
    const p = new JobPrinter((l) => lines.push(l), 'QUEUED');
    const now = new Date('2026-05-04T12:00:00Z');
    const wait = (message: string, position: number, at: string) =>
      job({ status: 'QUEUED', pending: { reason: 'capacity', message, position, estimatedStartAt: at } });
    p.update(wait('busy; estimated start in about 4.00 h', 2, '2026-05-04T16:00:00Z'), now);
    p.update(wait('busy; estimated start in about 3.99 h', 2, '2026-05-04T16:01:00Z'), now);
    p.update(wait('busy; estimated start in about 3.98 h', 1, '2026-05-04T16:01:00Z'), now);
    p.update(wait('busy; estimated start in about 3.97 h', 1, '2026-05-04T16:20:00Z'), now);
    expect(lines).toEqual([
      'waiting (capacity): busy; estimated start in about 4.00 h — position 2 in the queue',
      'waiting (capacity): busy; estimated start in about 3.98 h — position 1 in the queue',
      'waiting (capacity): busy; estimated start in about 3.97 h — position 1 in the queue',
    ]);
  });

  it('a retried job shows the new attempt; a failed one points at its logs', () => {
    const lines: string[] = [];
    const p = new JobPrinter((l) => lines.push(l));
    p.update(job({ metrics: [metric(1)] }));
    p.update(job({ attempt: 2, metrics: [metric(1), metric(1, 2)] }));
    p.finish(job({ status: 'FAILED', statusMessage: 'retries exhausted', attempt: 2 }));
    expect(lines).toContain('attempt 2 of 3 (resumes from the last checkpoint)');
    expect(lines.filter((l) => l.startsWith('Epoch 1/3'))).toHaveLength(2);
    expect(lines.at(-1)).toBe('  see the output: gpulab logs 3f2a9c1e-0000-4000-8000-000000000001');
  });

  it('the status page has the epochs in the seed format and the model', () => {
    const lines = jobDetail(job({ status: 'SUCCEEDED', metrics: [metric(1)], artifacts: [] }));
    expect(lines[0]).toBe('job 3f2a9c1e-0000-4000-8000-000000000001 "flowers"');
    expect(lines).toContain('  Epoch 1/3 | Train Loss: 0.5123 | Val Loss: 0.3333 | Val Acc: 87.65%');
    expect(lines).toContain('  resources:  1 × a10g GPU, max 0.50 h (holds 0.50 GPU-h), backend wasm');
  });
});

describe('errors say what to do next, with an exit code', () => {
  const api = (status: number, code: string, message: string, field: string | null = null) =>
    toCliError(new GpulabApiError(status, code, message, field, {}), 'http://api');

  it('maps API errors to exit codes and hints', () => {
    expect(api(401, 'UNAUTHENTICATED', 'token expired')).toMatchObject({
      exit: EXIT.API,
      hint: expect.stringMatching(/gpulab login/),
    });
    expect(api(404, 'NOT_FOUND', 'job x not found')).toMatchObject({ exit: EXIT.NOT_FOUND });
    expect(api(404, 'NOT_FOUND', 'no route GET /v1/x')).toMatchObject({
      exit: EXIT.API,
      hint: expect.stringMatching(/upgrade/),
    });
    expect(api(402, 'QUOTA_EXCEEDED', 'not enough')).toMatchObject({
      exit: EXIT.REFUSED,
      hint: 'see your quota with: gpulab quota',
    });
    expect(api(400, 'VALIDATION', 'too big', 'epochs')).toMatchObject({
      exit: EXIT.REFUSED,
      message: 'too big (field epochs)',
      hint: 'fix epochs and run the command again',
    });
    expect(api(503, 'UNAVAILABLE', 'db down')).toMatchObject({ exit: EXIT.API });
  });

  it('an unreachable server names the URL and what to check', () => {
    const e = toCliError(
      Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNREFUSED' } }),
      'http://x:1',
    );
    expect(e).toMatchObject({ exit: EXIT.API, message: 'cannot reach the gpulab API at http://x:1 (ECONNREFUSED)' });
    expect(e.hint).toMatch(/GPULAB_URL/);
    const mine = new CliError('m', 6);
    expect(toCliError(mine, '')).toBe(mine);
  });
});
