import fc from 'fast-check';
import { BACKENDS } from '../src/job-spec';

/**
 * Random job specs for comparing the fast spec check with JobSpecSchema (job-spec-parse.test.ts, and the API's
 * submit-body test): each field absent, valid, on or just past one of the schema's bounds, of the wrong type, or junk;
 * sometimes an unknown key. Mostly near-valid, so both the accepting and the refusing paths are exercised.
 */
export const BOUNDS = [
  0,
  1e-8,
  0.001,
  0.08,
  0.1,
  0.5,
  0.9,
  0.999,
  0.9999,
  0.99999,
  1,
  4,
  7,
  8,
  10,
  16,
  100,
  120,
  168,
  200,
  224,
  500,
  512,
  1000,
  2 ** 31 - 1,
];
const nearBounds = fc
  .tuple(fc.constantFrom(...BOUNDS), fc.constantFrom(0, 0, 1, -1, 1e-9, -1e-9, 0.5), fc.boolean())
  .map(([b, d, neg]) => (neg ? -(b + d) : b + d));

export const arbNumber: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: nearBounds },
  { weight: 2, arbitrary: fc.integer({ min: -5, max: 600 }) },
  { weight: 1, arbitrary: fc.double() },
  {
    weight: 1,
    arbitrary: fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 2 ** 53 + 2),
  },
);

export const arbJunk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, undefined, true, false, '', '1', [], {}, new Date(0), Object.create(null)),
  fc.string({ maxLength: 5 }),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }),
);

/** `v` most of the time; else absent, junk or a number. */
const maybe = (v: fc.Arbitrary<unknown>) =>
  fc.oneof({ weight: 8, arbitrary: v }, { weight: 1, arbitrary: arbJunk }, { weight: 1, arbitrary: arbNumber });

const arbBool = maybe(fc.boolean());

const arbUri = fc.oneof(
  fc.constantFrom(
    's3://gpulab-test/datasets/x',
    's3://bucket/',
    's3://b.u-c/k/e/y.json',
    's3://b/x',
    's3://Bucket/x',
    's3://bucket',
    's3://bucket/a/../b',
    's3://bucket/..',
    's3://bucket/a..b/c',
    's3://bucket/a\u0000',
    'http://bucket/x',
    ` s3://bucket/x`,
    `s3://${'b'.repeat(63)}/x`,
    `s3://${'b'.repeat(64)}/x`,
  ),
  fc.string({ maxLength: 12 }).map((s) => `s3://bucket/${s}`),
);

const arbName = fc.oneof(
  fc.constantFrom('resnet on cats', '  padded  ', '', '   ', 'x'.repeat(120), 'x'.repeat(121), ` ${'y'.repeat(120)} `),
  fc.constantFrom('a\u0000b', '\u0000', ' \u00a0x\u2028 ', '\ufeffz'),
  fc.string({ maxLength: 20 }),
);

/** A record whose keys are each present or absent. */
const partial = (r: Record<string, fc.Arbitrary<unknown>>) =>
  fc.record(r, { requiredKeys: [] }) as fc.Arbitrary<Record<string, unknown>>;

/** Adds an unknown key now and then. */
const withExtra = (a: fc.Arbitrary<Record<string, unknown>>) =>
  fc
    .tuple(a, fc.option(fc.constantFrom('extra', 'Type', 'lr ', 'constructor', 'toString'), { freq: 8 }), arbJunk)
    .map(([o, k, v]) => (k === null ? o : { ...o, [k]: v }));

const arbOptimizer = withExtra(
  partial({
    type: fc.constantFrom('sgd', 'adamw', 'adam', undefined, 1),
    lr: arbNumber,
    momentum: arbNumber,
    weightDecay: arbNumber,
    nesterov: arbBool,
    beta1: arbNumber,
    beta2: arbNumber,
    eps: arbNumber,
  }),
);
const arbSchedule = withExtra(
  partial({
    type: fc.constantFrom('step', 'cosine', 'constant', 'linear'),
    stepSize: arbNumber,
    gamma: arbNumber,
    warmupEpochs: arbNumber,
    minLr: arbNumber,
  }),
);
const arbFreeze = withExtra(
  partial({ mode: fc.constantFrom('head', 'partial', 'full', 'none'), trainableStages: arbNumber }),
);
const arbAugmentation = withExtra(
  partial({
    randomResizedCrop: arbBool,
    horizontalFlip: arbBool,
    scale: maybe(fc.oneof(fc.tuple(arbNumber, arbNumber), fc.array(arbNumber, { maxLength: 3 }))),
  }),
);
const arbResources = withExtra(
  partial({
    gpus: arbNumber,
    flavor: maybe(fc.constantFrom('local', 'a100', 'h100-80g', 'A100', '-x', 'x'.repeat(32), 'x'.repeat(33), '')),
    maxHours: arbNumber,
  }),
);

const arbWildSpec: fc.Arbitrary<Record<string, unknown>> = withExtra(
  partial({
    name: maybe(arbName),
    dataset: maybe(withExtra(partial({ uri: maybe(arbUri) }))),
    model: maybe(
      withExtra(partial({ arch: maybe(fc.constantFrom('resnet18', 'resnet50')), pretrained: maybe(arbUri) })),
    ),
    imageSize: arbNumber,
    epochs: arbNumber,
    batchSize: arbNumber,
    optimizer: maybe(arbOptimizer),
    schedule: maybe(arbSchedule),
    freeze: maybe(arbFreeze),
    augmentation: maybe(arbAugmentation),
    gradClipNorm: arbNumber,
    labelSmoothing: arbNumber,
    earlyStopping: maybe(fc.oneof(fc.constant(null), withExtra(partial({ patience: arbNumber, minDelta: arbNumber })))),
    seed: arbNumber,
    backend: maybe(fc.constantFrom(...BACKENDS, 'gpu')),
    resources: maybe(arbResources),
  }),
);

/** A spec as JSON.parse gives it (no undefined, no Infinity, no Date, only plain objects). */
export const viaJson = (v: unknown): unknown => {
  const s = JSON.stringify(v);
  return s === undefined ? undefined : JSON.parse(s);
};

const int = (min: number, max: number) => fc.integer({ min, max });
const real = (min: number, max: number, minExcluded = false) =>
  fc.oneof(
    fc.constantFrom(...[min, max].filter((v) => !(minExcluded && v === min))),
    fc.double({ min, max, minExcluded, noNaN: true }),
  );
const opt = (r: Record<string, fc.Arbitrary<unknown>>) => partial(r);

/** Specs the schema accepts (every field absent or valid, bounds included), as JSON gives them. */
export const arbValidSpec: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(
    opt({
      name: fc.oneof(
        fc.constantFrom(' cats ', 'x'.repeat(120)),
        fc.string({ minLength: 1, maxLength: 20 }).filter((s) => s.trim().length > 0 && !s.includes('\u0000')),
      ),
      model: opt({
        arch: fc.constant('resnet18'),
        pretrained: fc.oneof(fc.constant(null), fc.constant('s3://weights/r18.safetensors')),
      }),
      imageSize: int(16, 512),
      epochs: int(1, 500),
      batchSize: int(1, 512),
      optimizer: fc.oneof(
        opt({ lr: real(0, 10, true), momentum: real(0, 0.999), weightDecay: real(0, 1), nesterov: fc.boolean() }).map(
          (o) => ({ ...o, type: 'sgd' }),
        ),
        opt({
          lr: real(0, 10, true),
          beta1: real(0, 0.9999),
          beta2: real(0, 0.99999),
          eps: real(0, 1, true),
          weightDecay: real(0, 1),
        }).map((o) => ({ ...o, type: 'adamw' })),
      ),
      schedule: fc.oneof(
        opt({ stepSize: int(1, 1000), gamma: real(0, 1, true) }).map((o) => ({ ...o, type: 'step' })),
        opt({ warmupEpochs: int(0, 100), minLr: real(0, 1) }).map((o) => ({ ...o, type: 'cosine' })),
        fc.constant({ type: 'constant' }),
      ),
      freeze: fc.oneof(
        fc.constantFrom({ mode: 'head' }, { mode: 'full' }),
        opt({ trainableStages: int(1, 4) }).map((o) => ({ ...o, mode: 'partial' })),
      ),
      augmentation: opt({
        randomResizedCrop: fc.boolean(),
        horizontalFlip: fc.boolean(),
        scale: fc.tuple(real(0, 1, true), real(0, 1, true)),
      }),
      gradClipNorm: fc.oneof(fc.constant(null), real(0, 100, true)),
      labelSmoothing: real(0, 0.5),
      earlyStopping: fc.oneof(
        fc.constant(null),
        fc.record({ patience: int(1, 100), minDelta: real(0, 1) }, { requiredKeys: ['patience'] }),
      ),
      seed: int(0, 2 ** 31 - 1),
      backend: fc.constantFrom(...BACKENDS),
      resources: opt({
        gpus: int(1, 8),
        flavor: fc.constantFrom('local', 'a100', 'x'.repeat(32)),
        maxHours: real(0, 168, true),
      }),
    }),
    fc.constantFrom('s3://gpulab-test/datasets/x', 's3://bucket/', `s3://${'b'.repeat(63)}/a..b/c`),
  )
  .map(([o, uri]) => viaJson({ ...o, dataset: { uri } }) as Record<string, unknown>);

/** A valid spec with one or two fields (top-level or nested one level) replaced by a wild value. */
const arbMutatedSpec = fc
  .tuple(arbValidSpec, arbWildSpec, fc.array(fc.nat(), { minLength: 1, maxLength: 2 }))
  .map(([valid, wild, picks]) => {
    const out: Record<string, unknown> = { ...valid };
    const keys = Object.keys(wild);
    for (const p of picks) {
      const k = keys[p % Math.max(1, keys.length)];
      if (k === undefined) continue;
      const w = wild[k];
      const v = out[k];
      // merge into a nested object half the time, so one nested field changes and the rest stays valid
      out[k] =
        p % 2 === 0 &&
        v &&
        w &&
        typeof v === 'object' &&
        typeof w === 'object' &&
        !Array.isArray(v) &&
        !Array.isArray(w)
          ? { ...v, ...w }
          : w;
    }
    return out;
  });

/** Paths of the numbers in a JSON value. */
export function numberPaths(v: unknown, at: string[] = []): string[][] {
  if (typeof v === 'number') return [at];
  if (typeof v !== 'object' || v === null) return [];
  return Object.entries(v).flatMap(([k, x]) => numberPaths(x, [...at, k]));
}

/**
 * A valid spec with one number moved a little: the valid generator often sits on a bound (fast-check favours the
 * ends of a range), so this probes just inside and just outside every bound without listing them.
 */
const arbNudgedSpec = fc
  .tuple(arbValidSpec, fc.nat(), fc.constantFrom(1, -1, 1e-9, -1e-9, 0.5, -0.5, 1e-3, -1e-3))
  .map(([valid, pick, delta]) => {
    const out = structuredClone(valid);
    const paths = numberPaths(out);
    const path = paths[pick % Math.max(1, paths.length)];
    if (!path || path.length === 0) return out;
    let o = out as Record<string, unknown>;
    for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
    const last = path[path.length - 1]!;
    o[last] = (o[last] as number) + delta;
    return out;
  });

/** Job specs near and far from valid, for comparing the fast check with the schema. */
export const arbSpec: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  arbWildSpec,
  arbMutatedSpec,
  arbValidSpec,
  arbNudgedSpec,
  arbNudgedSpec,
);
