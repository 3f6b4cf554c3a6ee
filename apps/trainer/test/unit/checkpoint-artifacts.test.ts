import { JobSpecSchema } from '@gpulab/core';
import { layout } from '@gpulab/storage';
import { selectBackend } from '../../src/backends';
import { randomStateDict } from '../../src/model/init';
import { ResNet18 } from '../../src/model/resnet18';
import { loadStateDict, modelToSafetensors } from '../../src/model/weights';
import { loadModelBundle } from '../../src/predict/model-bundle';
import { writeArtifacts } from '../../src/train/artifacts';
import {
  CheckpointError,
  type CheckpointState,
  readLatest,
  restoreCheckpoint,
  writeCheckpoint,
} from '../../src/train/checkpoint';
import type { EpochMetrics } from '../../src/train/metrics';
import { Sgd } from '../../src/train/optimizers';
import { MemoryStore } from '../helpers/memory-store';
import { sameBits } from '../helpers/reference';

jest.setTimeout(60_000);

const metrics = (epoch: number, valAcc: number): EpochMetrics => ({
  epoch,
  attempt: 1,
  trainLoss: 1,
  valLoss: 1,
  valAcc,
  perClassAcc: [valAcc, valAcc],
  confusion: [
    [1, 0],
    [0, 1],
  ],
  lr: 0.1,
  seconds: 1,
  checkpoint: layout.checkpointPrefix('job', 1, epoch),
});

const state = (epoch: number, history: EpochMetrics[]): CheckpointState => ({
  version: 1,
  jobId: 'job',
  attempt: 1,
  epoch,
  partial: null,
  history,
  classes: ['cat', 'dog'],
  rng: { seed: 1, scheme: 'counter(seed, epoch, index)', nextEpoch: epoch + 1 },
  optimizer: { type: 'sgd', step: 0 },
  specDigest: 'd',
});

describe('checkpoints and final artifacts', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('restores weights, running stats and optimizer state; rejects incomplete checkpoints', async () => {
    const store = new MemoryStore();
    const model = new ResNet18(2);
    const opt = new Sgd({ momentum: 0.9, weightDecay: 0, nesterov: false });
    loadStateDict(model, randomStateDict(2, 9));
    await writeCheckpoint(store, { model, optimizer: opt, state: state(1, [metrics(1, 0.5)]) });
    const latest = await readLatest(store, 'job');
    expect(latest).toEqual({ attempt: 1, epoch: 1, prefix: layout.checkpointPrefix('job', 1, 1) });

    const other = new ResNet18(2);
    const otherOpt = new Sgd({ momentum: 0.9, weightDecay: 0, nesterov: false });
    const restored = await restoreCheckpoint(store, latest!, other, otherOpt);
    expect(restored.history).toHaveLength(1);
    expect(
      Buffer.compare(Buffer.from(await modelToSafetensors(other)), Buffer.from(await modelToSafetensors(model))),
    ).toBe(0);
    for (const d of model.tensors)
      expect([
        d.name,
        sameBits(other.variable(d.name).dataSync() as Float32Array, model.variable(d.name).dataSync() as Float32Array),
      ]).toEqual([d.name, true]);

    store.objects.delete(`${latest!.prefix}optimizer.safetensors`);
    await expect(restoreCheckpoint(store, latest!, other, otherOpt)).rejects.toThrow(CheckpointError);
    const wrongSize = new ResNet18(5);
    store.objects.set(`${latest!.prefix}optimizer.safetensors`, new Uint8Array(8));
    await expect(restoreCheckpoint(store, latest!, wrongSize, otherOpt)).rejects.toThrow(CheckpointError);
    for (const m of [model, other, wrongSize]) m.dispose();
    opt.dispose();
    otherOpt.dispose();
  });

  it("exports the best epoch's weights with model.json, labels, preprocessing and metrics", async () => {
    const store = new MemoryStore();
    const model = new ResNet18(2);
    const opt = new Sgd({ momentum: 0.9, weightDecay: 0, nesterov: false });
    loadStateDict(model, randomStateDict(2, 1));
    await writeCheckpoint(store, { model, optimizer: opt, state: state(1, [metrics(1, 0.9)]) });
    const bestWeights = store.objects.get(`${layout.checkpointPrefix('job', 1, 1)}weights.safetensors`)!;
    loadStateDict(model, randomStateDict(2, 2)); // epoch 2 is worse and differs
    const history = [metrics(1, 0.9), metrics(2, 0.6)];
    await writeCheckpoint(store, { model, optimizer: opt, state: state(2, history) });
    const events: unknown[] = [];
    const spec = JobSpecSchema.parse({ dataset: { uri: 's3://bucket/d' }, imageSize: 64 });
    await writeArtifacts({
      jobId: 'job',
      spec,
      classes: ['cat', 'dog'],
      backend: 'wasm',
      model,
      outcome: { status: 'completed', history, best: history[0]!, stoppedEarly: false },
      store,
      emit: async (e) => {
        events.push(e);
      },
    });
    const prefix = layout.modelPrefix('job');
    expect(
      Buffer.compare(Buffer.from(store.objects.get(`${prefix}weights.safetensors`)!), Buffer.from(bestWeights)),
    ).toBe(0);
    expect(store.json(`${prefix}labels.json`)).toEqual(['cat', 'dog']);
    expect(store.json(`${prefix}preprocessing.json`)).toEqual({
      resize: 73,
      crop: 64,
      interpolation: 'bilinear',
      scale: 1 / 255,
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
      channels: 'RGB',
    });
    expect(store.json(`${prefix}model.json`)).toMatchObject({
      arch: 'resnet18',
      numClasses: 2,
      imageSize: 64,
      bestEpoch: 1,
      layout: 'pytorch',
    });
    expect(store.json(layout.metrics('job'))).toMatchObject({
      bestEpoch: 1,
      bestValAcc: 0.9,
      stoppedEarly: false,
      classes: ['cat', 'dog'],
    });
    expect(events).toHaveLength(7);

    const bundle = await loadModelBundle(store, prefix);
    expect(bundle.labels).toEqual(['cat', 'dog']);
    expect(bundle.imageSize).toBe(64);
    bundle.model.dispose();
    model.dispose();
    opt.dispose();
  });
});
