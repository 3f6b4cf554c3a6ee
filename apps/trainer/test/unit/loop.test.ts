/**
 * The epoch loop with synthetic batches and an in-memory store: checkpoints, latest.json written last, events,
 * seed lines, no tensor leak across epochs, SIGTERM-style stop mid-epoch and exact resumption, early stopping.
 */
import { type JobSpec, JobSpecSchema } from '@gpulab/core';
import { layout } from '@gpulab/storage';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/backends';
import type { TrainerEvent } from '../../src/events';
import { silentLogger } from '../../src/log';
import { randomStateDict } from '../../src/model/init';
import { ResNet18 } from '../../src/model/resnet18';
import { loadStateDict } from '../../src/model/weights';
import { type LatestPointer, readLatest, restoreCheckpoint } from '../../src/train/checkpoint';
import { freezePlan } from '../../src/train/freeze';
import { runTraining, type TrainingOutcome } from '../../src/train/loop';
import { createOptimizer } from '../../src/train/optimizers';
import { MemoryStore } from '../helpers/memory-store';
import { syntheticBatches } from '../helpers/synthetic';

jest.setTimeout(180_000);

const SEED_LINE = /^Epoch (\d+)\/(\d+) \| Train Loss: \d+\.\d{4} \| Val Loss: \d+\.\d{4} \| Val Acc: \d+\.\d{2}%$/;

function specOf(over: Partial<Record<string, unknown>> = {}): JobSpec {
  return JobSpecSchema.parse({
    dataset: { uri: 's3://data/set' },
    imageSize: 32,
    epochs: 3,
    batchSize: 4,
    freeze: { mode: 'full' },
    optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 },
    schedule: { type: 'step', stepSize: 2, gamma: 0.5 },
    seed: 7,
    backend: 'wasm',
    ...over,
  });
}

interface Run {
  outcome: TrainingOutcome;
  lines: string[];
  events: TrainerEvent[];
  tensorsAtLines: number[];
}

async function train(opts: {
  spec: JobSpec;
  store: MemoryStore;
  attempt: number;
  stopAfterSteps?: number;
  resume?: boolean;
}): Promise<Run> {
  const model = new ResNet18(3);
  const optimizer = createOptimizer(opts.spec.optimizer);
  const lines: string[] = [];
  const events: TrainerEvent[] = [];
  const tensorsAtLines: number[] = [];
  let resume = null;
  try {
    if (opts.resume) {
      const latest = await readLatest(opts.store, 'job');
      expect(latest).not.toBeNull();
      resume = await restoreCheckpoint(opts.store, latest!, model, optimizer);
    } else {
      loadStateDict(model, randomStateDict(3, opts.spec.seed));
    }
    let polls = 0;
    const outcome = await runTraining({
      jobId: 'job',
      attempt: opts.attempt,
      spec: opts.spec,
      specDigest: 'digest',
      classes: ['a', 'b', 'c'],
      model,
      optimizer,
      plan: freezePlan(opts.spec.freeze, model),
      batches: syntheticBatches({ imageSize: 32, batchSize: 4, train: 8, val: 6, classes: 3 }),
      store: opts.store,
      emit: async (e) => {
        events.push(e);
      },
      print: (line) => {
        lines.push(line);
        tensorsAtLines.push(tf.memory().numTensors);
      },
      log: silentLogger,
      stopRequested: () => opts.stopAfterSteps !== undefined && ++polls > opts.stopAfterSteps,
      resume,
    });
    return { outcome, lines, events, tensorsAtLines };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

function numbers(o: TrainingOutcome) {
  return o.history.map((m) => ({
    epoch: m.epoch,
    trainLoss: m.trainLoss,
    valLoss: m.valLoss,
    valAcc: m.valAcc,
    lr: m.lr,
  }));
}

describe('training loop', () => {
  let baseline: Run;
  let baselineStore: MemoryStore;

  beforeAll(async () => {
    await selectBackend('wasm');
    baselineStore = new MemoryStore();
    const before = tf.memory().numTensors;
    baseline = await train({ spec: specOf(), store: baselineStore, attempt: 1 });
    expect(tf.memory().numTensors).toBe(before); // model and optimizer disposed: nothing left behind
  });

  it('trains every epoch and prints one seed line per epoch', () => {
    expect(baseline.outcome.status).toBe('completed');
    expect(baseline.outcome.history.map((m) => m.epoch)).toEqual([1, 2, 3]);
    expect(baseline.lines).toHaveLength(3);
    for (const [i, line] of baseline.lines.entries()) {
      expect(line).toMatch(SEED_LINE);
      expect(line.startsWith(`Epoch ${i + 1}/3 |`)).toBe(true);
    }
    expect(baseline.outcome.history.map((m) => m.lr)).toEqual([0.05, 0.05, 0.025]);
    for (const m of baseline.outcome.history) {
      expect(Number.isFinite(m.trainLoss)).toBe(true);
      expect(m.confusion.flat().reduce((a, b) => a + b, 0)).toBe(6);
      expect(m.perClassAcc).toHaveLength(3);
    }
  });

  it('leaks no tensors across epochs', () => {
    expect(new Set(baseline.tensorsAtLines).size).toBe(1);
  });

  it('writes each checkpoint before pointing latest.json at it', () => {
    const w = baselineStore.writes;
    for (const e of [1, 2, 3]) {
      const prefix = layout.checkpointPrefix('job', 1, e);
      const files = ['weights.safetensors', 'optimizer.safetensors', 'state.json'].map((f) => w.indexOf(prefix + f));
      expect(files.every((i) => i >= 0)).toBe(true);
      const pointerWrite = w.findIndex((k, i) => k === layout.latestCheckpoint('job') && i > Math.max(...files));
      expect(pointerWrite).toBeGreaterThan(Math.max(...files));
    }
    expect(baselineStore.json<LatestPointer>(layout.latestCheckpoint('job'))).toEqual({
      attempt: 1,
      epoch: 3,
      prefix: layout.checkpointPrefix('job', 1, 3),
    });
    const state = baselineStore.json<{ epoch: number; history: unknown[]; partial: unknown }>(
      `${layout.checkpointPrefix('job', 1, 2)}state.json`,
    );
    expect(state.epoch).toBe(2);
    expect(state.history).toHaveLength(2);
    expect(state.partial).toBeNull();
  });

  it('reports epoch, checkpoint and artifact events', () => {
    const types = baseline.events.map((e) => e.type);
    expect(types).toEqual([
      'epoch',
      'checkpoint',
      'artifact',
      'epoch',
      'checkpoint',
      'artifact',
      'epoch',
      'checkpoint',
      'artifact',
    ]);
    const epoch = baseline.events[0] as Extract<TrainerEvent, { type: 'epoch' }>;
    expect(epoch).toMatchObject({ attempt: 1, epoch: 1, epochs: 3, lr: 0.05 });
    expect(epoch.confusion).toHaveLength(3);
    expect(baseline.events[1]).toEqual({
      type: 'checkpoint',
      attempt: 1,
      epoch: 1,
      key: layout.checkpointPrefix('job', 1, 1),
    });
  });

  it('stops mid-epoch with a partial checkpoint, and the resumed run ends with identical metrics', async () => {
    const store = new MemoryStore();
    // 2 steps per epoch. Polls: 1-2 before epoch 1's steps, 3 at its end, 4 before epoch 2's first step; 5 stops.
    const stopped = await train({ spec: specOf(), store, attempt: 1, stopAfterSteps: 4 });
    expect(stopped.outcome.status).toBe('stopped');
    expect(stopped.lines).toHaveLength(1);
    const latest = store.json<LatestPointer>(layout.latestCheckpoint('job'));
    expect(latest).toEqual({ attempt: 1, epoch: 2, step: 1, prefix: `${layout.checkpointPrefix('job', 1, 2)}step-1/` });

    const resumed = await train({ spec: specOf(), store, attempt: 2, resume: true });
    expect(resumed.outcome.status).toBe('completed');
    expect(resumed.lines.map((l) => l.slice(0, 10))).toEqual(['Epoch 2/3 ', 'Epoch 3/3 ']);
    const a = numbers(resumed.outcome);
    const b = numbers(baseline.outcome);
    expect(a.map((m) => m.epoch)).toEqual([1, 2, 3]);
    a.forEach((m, i) => {
      expect(Math.abs(m.trainLoss - b[i]!.trainLoss)).toBeLessThan(1e-6);
      expect(Math.abs(m.valLoss - b[i]!.valLoss)).toBeLessThan(1e-6);
      expect(m.valAcc).toBe(b[i]!.valAcc);
    });
    expect(resumed.outcome.history[2]!.checkpoint).toBe(layout.checkpointPrefix('job', 2, 3));
    expect(resumed.outcome.history[0]!.attempt).toBe(1);
  });

  it('stops early when validation loss stops improving', async () => {
    // Frozen backbone (eval-mode BN) and lr 0: nothing changes, so epoch 2 cannot improve on epoch 1.
    const spec = specOf({
      freeze: { mode: 'head' },
      optimizer: { type: 'sgd', lr: 1e-12, momentum: 0 },
      earlyStopping: { patience: 1, minDelta: 0.01 },
      epochs: 5,
    });
    const run = await train({ spec, store: new MemoryStore(), attempt: 1 });
    expect(run.outcome.status).toBe('completed');
    expect(run.outcome.stoppedEarly).toBe(true);
    expect(run.outcome.history).toHaveLength(2);
  });
});
