/**
 * The feature cache (train/feature-cache.ts): the epoch loop with the cache gives the same per-epoch metrics and
 * weights as recomputing the frozen front in every step — head-only for fixed views (no augmentation), flip views
 * and fresh views (random crops), with and without room in the cache, and partial plans cut at their first trainable
 * stage; and it runs the frozen front once per view.
 */
import { type JobSpec, JobSpecSchema } from '@gpulab/core';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/backends';
import { silentLogger } from '../../src/log';
import { randomStateDict } from '../../src/model/init';
import { ResNet18 } from '../../src/model/resnet18';
import { loadStateDict } from '../../src/model/weights';
import { cacheStage, FeatureCache, isHeadOnly } from '../../src/train/feature-cache';
import { freezePlan } from '../../src/train/freeze';
import { runTraining, type TrainingOutcome } from '../../src/train/loop';
import { createOptimizer } from '../../src/train/optimizers';
import { headStep } from '../../src/train/step';
import { MemoryStore } from '../helpers/memory-store';
import { relError } from '../helpers/reference';
import { syntheticViewBatches } from '../helpers/synthetic';

jest.setTimeout(180_000);

const DATA = { imageSize: 16, batchSize: 4, train: 10, val: 6, classes: 3 };
const EPOCHS = 3;
type Mode = 'fixed' | 'flip' | 'fresh';

function specOf(over: Partial<Record<string, unknown>> = {}): JobSpec {
  return JobSpecSchema.parse({
    dataset: { uri: 's3://data/set' },
    imageSize: DATA.imageSize,
    epochs: EPOCHS,
    batchSize: DATA.batchSize,
    freeze: { mode: 'head' },
    optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 5e-4 },
    schedule: { type: 'cosine' },
    seed: 7,
    backend: 'wasm',
    ...over,
  });
}

interface Run {
  outcome: TrainingOutcome;
  /** Samples that went through the backbone (ResNet18.features), over the whole run. */
  backboneSamples: number;
  /** Samples that went through the frozen front of a partial plan (ResNet18.prefix before a backbone stage). */
  prefixSamples: number;
  fcWeight: Float32Array;
  fcBias: Float32Array;
  /** A trained layer4 weight (partial plans). */
  layer4Weight: Float32Array;
}

let initial: ReturnType<typeof randomStateDict> | null = null;
/** The same random initialisation for every run (computed once: it takes a second). */
const initialWeights = () => {
  initial ??= randomStateDict(DATA.classes, 7);
  return initial;
};

async function run(
  mode: Mode,
  featureCache: { maxBytes: number } | false | undefined,
  freeze: JobSpec['freeze'] = { mode: 'head' },
  lr = 0.1,
  imageSize = DATA.imageSize,
): Promise<Run> {
  const spec = specOf({ freeze, imageSize, optimizer: { type: 'sgd', lr, momentum: 0.9, weightDecay: 5e-4 } });
  const model = new ResNet18(DATA.classes);
  const optimizer = createOptimizer(spec.optimizer);
  let backboneSamples = 0;
  const features = model.features.bind(model);
  model.features = (x, stages) => {
    backboneSamples += x.shape[0];
    return features(x, stages);
  };
  let prefixSamples = 0;
  const prefix = model.prefix.bind(model);
  model.prefix = (x, stage) => {
    if (stage !== 'fc') prefixSamples += x.shape[0];
    return prefix(x, stage);
  };
  try {
    loadStateDict(model, initialWeights());
    const outcome = await runTraining({
      jobId: 'job',
      attempt: 1,
      spec,
      specDigest: 'digest',
      classes: ['a', 'b', 'c'],
      model,
      optimizer,
      plan: freezePlan(spec.freeze, model),
      batches: syntheticViewBatches({ ...DATA, imageSize, mode }),
      store: new MemoryStore(),
      emit: async () => {},
      print: () => {},
      log: silentLogger,
      stopRequested: () => false,
      resume: null,
      ...(featureCache === undefined ? {} : { featureCache }),
    });
    return {
      outcome,
      backboneSamples,
      prefixSamples,
      layer4Weight: model.variable('layer4.1.conv2.weight').dataSync() as Float32Array,
      fcWeight: model.variable('fc.weight').dataSync() as Float32Array,
      fcBias: model.variable('fc.bias').dataSync() as Float32Array,
    };
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

function expectSameRun(a: Run, b: Run): void {
  expect(a.outcome.history).toHaveLength(EPOCHS);
  expect(b.outcome.history).toHaveLength(EPOCHS);
  a.outcome.history.forEach((m, i) => {
    const r = b.outcome.history[i]!;
    expect(m.epoch).toBe(r.epoch);
    expect(m.lr).toBe(r.lr);
    expect(Math.abs(m.trainLoss - r.trainLoss)).toBeLessThan(1e-5);
    expect(Math.abs(m.valLoss - r.valLoss)).toBeLessThan(1e-5);
    expect(m.valAcc).toBe(r.valAcc);
    expect(m.confusion).toEqual(r.confusion);
    expect(m.perClassAcc).toEqual(r.perClassAcc);
  });
  const maxDiff = (x: Float32Array, y: Float32Array) => x.reduce((d, v, i) => Math.max(d, Math.abs(v - y[i]!)), 0);
  expect(maxDiff(a.fcWeight, b.fcWeight)).toBeLessThan(1e-5);
  expect(maxDiff(a.fcBias, b.fcBias)).toBeLessThan(1e-5);
  expect(maxDiff(a.layer4Weight, b.layer4Weight)).toBeLessThan(1e-5);
}

/** Distinct train views over the run's epochs (what the cache must compute once each). */
async function distinctTrainViews(mode: Mode): Promise<number> {
  const source = syntheticViewBatches({ ...DATA, mode });
  const seen = new Set<number>();
  for (let e = 1; e <= EPOCHS; e++) for await (const b of source('train', e)) for (const v of b.views!) seen.add(v);
  return seen.size;
}

describe('head-only feature cache', () => {
  const reference = new Map<Mode, Run>();

  beforeAll(async () => {
    await selectBackend('wasm');
    for (const mode of ['fixed', 'flip', 'fresh'] as const) reference.set(mode, await run(mode, false));
  });

  it('the reference path runs the backbone for every sample of every epoch, and the head learns', () => {
    for (const r of reference.values()) {
      expect(r.backboneSamples).toBe(EPOCHS * (DATA.train + DATA.val));
      const losses = r.outcome.history.map((m) => m.trainLoss);
      expect(losses[EPOCHS - 1]).not.toBeCloseTo(losses[0]!, 3); // the comparison below is not between constants
    }
  });

  it('fixed views: same metrics and weights; the backbone runs once per image', async () => {
    const before = tf.memory().numTensors;
    const cached = await run('fixed', undefined); // on by default for head-only plans
    expect(tf.memory().numTensors).toBe(before);
    expectSameRun(cached, reference.get('fixed')!);
    expect(cached.backboneSamples).toBe(DATA.train + DATA.val);
  });

  it('flip views: same metrics and weights; the backbone runs once per distinct view', async () => {
    const cached = await run('flip', { maxBytes: 1 << 20 });
    expectSameRun(cached, reference.get('flip')!);
    const views = await distinctTrainViews('flip');
    expect(views).toBeGreaterThan(DATA.train); // both views of some image occur
    expect(views).toBeLessThan(EPOCHS * DATA.train); // and some recur
    expect(cached.backboneSamples).toBe(views + DATA.val);
  });

  it('fresh views (random crops): same metrics and weights; train features every epoch, val once', async () => {
    const cached = await run('fresh', undefined);
    expectSameRun(cached, reference.get('fresh')!);
    expect(cached.backboneSamples).toBe(EPOCHS * DATA.train + DATA.val);
  });

  it('a cache too small for everything stays exact and recomputes what it could not keep', async () => {
    const cached = await run('fixed', { maxBytes: 4 * 512 * 4 }); // room for 4 of the 16 feature rows
    expectSameRun(cached, reference.get('fixed')!);
    // 4 train views kept after epoch 1; the other 6 train images and the whole val set are recomputed each epoch.
    expect(cached.backboneSamples).toBe(DATA.train + DATA.val + (EPOCHS - 1) * (DATA.train - 4 + DATA.val));
  });

  it.each([1, 2])(
    'partial plans (%i trainable stages) cache what enters the first trainable stage: same metrics and weights',
    async (trainableStages) => {
      const freeze = { mode: 'partial' as const, trainableStages };
      // 64 px and a smaller step than head-only's: at 16 px the trained stages' batch norms see 4 values per channel,
      // and such an ill-conditioned run turns float rounding (cached rows come from other batch compositions, ~1e-6)
      // into visible differences by epoch 2 — as it would between two uncached runs on different BLAS builds.
      const reference = await run('flip', false, freeze, 0.01, 64);
      expect(reference.prefixSamples).toBe(0);
      const before = tf.memory().numTensors;
      const cached = await run('flip', undefined, freeze, 0.01, 64);
      expect(tf.memory().numTensors).toBe(before);
      expectSameRun(cached, reference);
      const losses = reference.outcome.history.map((m) => m.trainLoss);
      expect(losses[EPOCHS - 1]).not.toBeCloseTo(losses[0]!, 3);
      // The frozen front runs once per distinct train view and once for the val set; nothing else runs it.
      expect(cached.prefixSamples).toBe((await distinctTrainViews('flip')) + DATA.val);
      expect(cached.backboneSamples).toBe(0);
    },
  );

  it('cuts head-only plans at the pooled features, partial ones at their first trainable stage, full ones nowhere', async () => {
    const model = new ResNet18(DATA.classes);
    try {
      expect(cacheStage(freezePlan({ mode: 'head' }, model))).toBe('fc');
      expect(cacheStage(freezePlan({ mode: 'partial', trainableStages: 1 }, model))).toBe('layer4');
      expect(cacheStage(freezePlan({ mode: 'partial', trainableStages: 3 }, model))).toBe('layer2');
      expect(cacheStage(freezePlan({ mode: 'partial', trainableStages: 4 }, model))).toBe('layer1');
      expect(cacheStage(freezePlan({ mode: 'full' }, model))).toBeNull();
      expect(isHeadOnly(freezePlan({ mode: 'head' }, model))).toBe(true);
      expect(isHeadOnly(freezePlan({ mode: 'partial', trainableStages: 1 }, model))).toBe(false);
      const optimizer = createOptimizer(specOf().optimizer);
      const batch = { features: new Float32Array(2 * 512), y: Int32Array.from([0, 1]), n: 2 };
      const opts = { lr: 0.1, labelSmoothing: 0, gradClipNorm: null };
      expect(() => headStep(model, optimizer, freezePlan({ mode: 'full' }, model), batch, opts)).toThrow(/head-only/);
      optimizer.dispose();
    } finally {
      model.dispose();
    }
  });

  it('replays the val pass without reading the source again; recomputes when a view is not deterministic', async () => {
    const model = new ResNet18(DATA.classes);
    try {
      loadStateDict(model, initialWeights());
      const source = syntheticViewBatches({ ...DATA, mode: 'fixed' });
      let reads = 0;
      const counted = (views: 'keep' | 'unknown') => () => {
        reads++;
        return (async function* () {
          for await (const b of source('val', 1)) yield views === 'keep' ? b : { ...b, views: undefined };
        })();
      };
      const collect = async (it: AsyncIterable<{ features: Float32Array }>) => {
        const out: Float32Array[] = [];
        for await (const b of it) out.push(b.features);
        return out;
      };
      const cache = new FeatureCache(model, DATA.imageSize);
      const first = await collect(cache.valFeatures(counted('keep')));
      const again = await collect(cache.valFeatures(counted('keep')));
      expect(reads).toBe(1);
      expect(again).toEqual(first);
      expect(cache.stats()).toEqual({ computed: DATA.val, reused: DATA.val, bytes: DATA.val * 512 * 4 });

      const blind = new FeatureCache(model, DATA.imageSize);
      await collect(blind.valFeatures(counted('unknown')));
      const recomputed = await collect(blind.valFeatures(counted('unknown')));
      expect(reads).toBe(3);
      expect(recomputed).toEqual(first);
      expect(blind.stats()).toEqual({ computed: 2 * DATA.val, reused: 0, bytes: 0 });
    } finally {
      model.dispose();
    }
  });

  it('groups whole batches of up to groupRows images for the frozen layers, skips replayed batches, same rows', async () => {
    const model = new ResNet18(DATA.classes);
    try {
      loadStateDict(model, initialWeights());
      // 45 images in batches of 4 (the last of 1): 12 batches; groups of whole batches of at most 16 rows
      const data = { ...DATA, train: 45 };
      const source = syntheticViewBatches({ ...data, mode: 'fresh' });
      const calls: number[] = [];
      const prefix = model.prefix.bind(model);
      model.prefix = ((x: tf.Tensor4D, at: Parameters<typeof prefix>[1]) => {
        calls.push(x.shape[0]);
        return prefix(x, at);
      }) as typeof model.prefix;
      const grouped = new FeatureCache(model, data.imageSize, undefined, 'fc', 16);
      const got: { n: number; features: Float32Array | null }[] = [];
      for await (const { batch, features } of grouped.withTrainFeatures(source('train', 1), 2))
        got.push({ n: batch.n, features: features?.features ?? null });
      expect(got.map((g) => g.n)).toEqual([4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 1]);
      expect(got.slice(0, 2).map((g) => g.features)).toEqual([null, null]); // replayed: nothing computed
      expect(calls).toEqual([16, 16, 5]); // batches 3-6, 7-10, 11-12 (4 + 1 images)
      // the same rows as one batch at a time
      calls.length = 0;
      const single = new FeatureCache(model, data.imageSize, undefined, 'fc', 1);
      const one: (Float32Array | null)[] = [];
      for await (const { features } of single.withTrainFeatures(source('train', 1), 2))
        one.push(features?.features ?? null);
      expect(calls).toEqual([4, 4, 4, 4, 4, 4, 4, 4, 4, 1]);
      for (const [i, g] of got.entries()) if (g.features) expect(relError(g.features, one[i]!)).toBeLessThan(1e-5);
    } finally {
      model.dispose();
    }
  });
});
