import fc from 'fast-check';
import { JobSpecSchema } from '../src/job-spec';
import { fastJobSpec, parseJobSpec } from '../src/job-spec-parse';
import { arbSpec, arbValidSpec, BOUNDS, numberPaths, viaJson } from './job-spec-arbitraries';

/** What the schema makes of `input`: its output, or 'invalid'. */
function bySchema(input: unknown): unknown {
  const r = JobSpecSchema.safeParse(input);
  return r.success ? r.data : 'invalid';
}

/** The fast check agrees with the schema wherever it answers: same values, same keys in the same order. */
function expectAgrees(input: unknown): boolean {
  const fast = fastJobSpec(input);
  if (fast === null) return false;
  const schema = bySchema(input);
  expect(fast).toStrictEqual(schema);
  expect(JSON.stringify(fast)).toBe(JSON.stringify(schema));
  return true;
}

it('accepts only what the schema accepts, and returns what it returns (random and boundary specs)', () => {
  let accepted = 0;
  fc.assert(
    fc.property(arbSpec, (spec) => {
      if (expectAgrees(spec)) accepted++;
    }),
    { numRuns: 4000 },
  );
  expect(accepted).toBeGreaterThan(0);
});

it('answers every spec as JSON gives it exactly as the schema does (but a name with a NUL, left to the schema)', () => {
  fc.assert(
    fc.property(arbSpec.map(viaJson), (spec) => {
      const fast = fastJobSpec(spec);
      const schema = bySchema(spec);
      const nulName =
        typeof (schema as { name?: unknown }).name === 'string' && /\0/.test((schema as { name: string }).name);
      if (schema === 'invalid' || nulName) expect(fast).toBeNull();
      else expect(JSON.stringify(fast)).toBe(JSON.stringify(schema));
    }),
    { numRuns: 4000 },
  );
});

it('takes the fast path for every valid spec, bounds included', () => {
  fc.assert(
    fc.property(arbValidSpec, (spec) => {
      expect(bySchema(spec)).not.toBe('invalid');
      expect(expectAgrees(spec)).toBe(true);
    }),
    { numRuns: 2000 },
  );
});

/** Two specs that between them have every numeric field of the schema. */
const FULL_SPECS = [
  {
    dataset: { uri: 's3://bucket/x' },
    imageSize: 224,
    epochs: 25,
    batchSize: 32,
    optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 0, nesterov: true },
    schedule: { type: 'step', stepSize: 7, gamma: 0.1 },
    freeze: { mode: 'partial', trainableStages: 2 },
    augmentation: { scale: [0.08, 1] },
    gradClipNorm: 1,
    labelSmoothing: 0.1,
    earlyStopping: { patience: 5, minDelta: 0.01 },
    seed: 42,
    resources: { gpus: 1, maxHours: 2 },
  },
  {
    dataset: { uri: 's3://bucket/x' },
    optimizer: { type: 'adamw', lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 },
    schedule: { type: 'cosine', warmupEpochs: 2, minLr: 0 },
  },
];
const INTEGERS = [...Array.from({ length: 520 }, (_, i) => i - 3), 999, 1000, 1001];
const NEAR = BOUNDS.flatMap((b) => [-1e-9, -1e-3, 1e-3, 1e-9, 0.5, -0.5, 1, -1].map((d) => b + d));
const CANDIDATES = [...INTEGERS, ...NEAR, ...NEAR.map((v) => -v), 2 ** 31, 2 ** 53, 1e-300, Number.MAX_VALUE];

it('agrees with the schema on every numeric field at every integer in [-3, 516] and near every bound', () => {
  let fast = 0;
  for (const base of FULL_SPECS) {
    expect(expectAgrees(base)).toBe(true);
    for (const path of numberPaths(base)) {
      for (const value of CANDIDATES) {
        const spec = structuredClone(base) as Record<string, unknown>;
        let o = spec;
        for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
        o[path[path.length - 1]!] = value;
        const accepted = expectAgrees(spec);
        if (accepted) fast++;
        // and nothing the schema accepts is left to it
        else expect({ path, value, schema: bySchema(spec) }).toEqual({ path, value, schema: 'invalid' });
      }
    }
  }
  expect(fast).toBeGreaterThan(1000);
});

it('agrees with the schema on names of every length, URIs and flavors', () => {
  const base = { dataset: { uri: 's3://bucket/x' } };
  for (let n = 0; n <= 125; n++)
    for (const name of ['x'.repeat(n), ` ${'x'.repeat(n)} `, '\t'.repeat(n), `${'é'.repeat(n)}\n`])
      expect({ name, fast: expectAgrees({ ...base, name }) }).toEqual({
        name,
        fast: bySchema({ ...base, name }) !== 'invalid',
      });
  const uris = [
    's3://bucket/x',
    's3://b/x',
    's3://bu/x',
    `s3://${'b'.repeat(63)}/`,
    `s3://${'b'.repeat(64)}/`,
    's3://bucket/../x',
    's3://bucket/x/..',
    's3://bucket/...',
    's3://-b/x',
    's3://b_c/x',
    's3://bucket',
  ];
  for (const uri of uris) {
    expect({ uri, fast: expectAgrees({ dataset: { uri } }) }).toEqual({
      uri,
      fast: bySchema({ dataset: { uri } }) !== 'invalid',
    });
    const model = { pretrained: uri };
    expect({ uri, fast: expectAgrees({ ...base, model }) }).toEqual({
      uri,
      fast: bySchema({ ...base, model }) !== 'invalid',
    });
  }
  for (const flavor of ['local', 'a', '0', '-a', 'a-', 'A', 'a_b', 'x'.repeat(32), 'x'.repeat(33), ''])
    expect({ flavor, fast: expectAgrees({ ...base, resources: { flavor } }) }).toEqual({
      flavor,
      fast: bySchema({ ...base, resources: { flavor } }) !== 'invalid',
    });
});

it('leaves an invalid spec to the schema, which reports it as before', () => {
  const bad = { dataset: { uri: 's3://b/x' }, epochs: 0, optimizer: { type: 'sgd', lr: 11 } };
  expect(fastJobSpec(bad)).toBeNull();
  expect(() => parseJobSpec(bad)).toThrow(/epochs[\s\S]*optimizer/);
  expect(parseJobSpec({ dataset: { uri: 's3://bucket/x' } })).toEqual(
    JobSpecSchema.parse({ dataset: { uri: 's3://bucket/x' } }),
  );
});

it('leaves non-plain objects, undefined values and non-finite numbers to the schema', () => {
  const ok = { dataset: { uri: 's3://bucket/x' } };
  expect(fastJobSpec(ok)).not.toBeNull();
  expect(fastJobSpec({ ...ok, epochs: undefined })).toBeNull();
  expect(fastJobSpec({ ...ok, optimizer: { type: 'adamw', eps: Number.POSITIVE_INFINITY } })).toBeNull();
  expect(fastJobSpec(Object.assign(new (class Spec {})(), ok))).toBeNull();
  expect(fastJobSpec(JSON.parse('{"__proto__":{"x":1},"dataset":{"uri":"s3://bucket/x"}}'))).toBeNull();
  expect(fastJobSpec([ok])).toBeNull();
});
