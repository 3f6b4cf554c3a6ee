/**
 * The native CPU kernels (native/kernels.c through src/backends/native-kernels.ts) against the cpu backend's
 * reference kernels: the convolution cases of the wasm kernel test (strides 1-3, every padding kind, non-square and
 * 1x1 filters) and the fused train-mode batch norm (+ ReLU) against the composed one — values, running statistics and
 * gradients, relative error under 1e-4. `npm test` builds the addon first (scripts/test.sh), so 'required' holds here.
 */
import * as tf from '@tensorflow/tfjs-core';
import { nativeKernelsActive, selectBackend } from '../../src/backends';
import { loadNativeKernels } from '../../src/backends/native-kernels';
import { referenceStateDict } from '../../src/model/reference-init';
import { ResNet18 } from '../../src/model/resnet18';
import { loadStateDict } from '../../src/model/weights';
import { Sgd } from '../../src/train/optimizers';
import { batchNormCase } from '../helpers/batch-norm-case';
import { CASES, type Case, caseData, convGrads, outShape, seeded } from '../helpers/conv-cases';
import { relError } from '../helpers/reference';

/** ResNet18 eval logits with the native kernels vs without, before and after a running statistic changes. */
async function evalFoldCheck(): Promise<void> {
  const x = seeded(2 * 40 * 40 * 3, 3);
  const logits = async (native: 'off' | 'required', bump: boolean) => {
    await selectBackend('wasm', { native });
    const model = new ResNet18(5);
    loadStateDict(model, referenceStateDict(1, 5));
    const run = async () => {
      const t = tf.tidy(() => model.forward(tf.tensor4d(x, [2, 40, 40, 3])));
      const v = await t.data();
      t.dispose();
      return v;
    };
    const first = await run();
    if (bump) {
      const rv = model.variable('layer2.0.bn1.running_var');
      rv.assign(tf.tidy(() => tf.mul(rv, 3)));
    }
    const second = await run();
    model.dispose();
    return { first, second };
  };
  const ref = await logits('off', true);
  const got = await logits('required', true);
  expect(relError(got.first, ref.first)).toBeLessThan(1e-5);
  expect(relError(got.second, ref.second)).toBeLessThan(1e-5);
  expect(relError(got.second, got.first)).toBeGreaterThan(1e-3); // the change was seen, not a stale fold
}

describe('native CPU kernels', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
    for (const c of CASES) outShape(c);
  });

  it('are registered for wasm when the addon is built', async () => {
    await selectBackend('wasm', { native: 'required' });
    expect(nativeKernelsActive()).toBe(true);
    expect(tf.getKernel('GpulabBatchNormTrain', 'wasm')).toBeDefined();
    expect(loadNativeKernels().kernels!.setThreads()).toBeGreaterThanOrEqual(1);
  });

  it('the CI build has oneDNN (libdnnl-dev), so both forward paths are tested below', () => {
    expect(loadNativeKernels().kernels!.onednn).toBe(true);
  });

  describe.each([
    ['oneDNN', true],
    ['im2col + BLAS', false],
  ])('forward on %s', (_name, onednn) => {
    let previous = true;
    beforeAll(() => {
      previous = loadNativeKernels().kernels!.useOneDnn(onednn);
    });
    afterAll(() => {
      loadNativeKernels().kernels!.useOneDnn(previous);
    });

    it.each(CASES.map((c, i) => [i, c] as const))('convolution case %i matches the cpu kernels', async (i, c) => {
      const { x, w, dy } = caseData(c, i);
      const ref = await convGrads('cpu', c, x, w, dy);
      const got = await convGrads('wasm', c, x, w, dy, 'required');
      expect(relError(got.y, ref.y)).toBeLessThan(1e-4);
      expect(relError(got.dx, ref.dx)).toBeLessThan(1e-4);
      expect(relError(got.dw, ref.dw)).toBeLessThan(1e-4);
    });

    it('eval mode (folded batch norm, residual, ReLU; cached oneDNN weights) gives the unfused logits', async () => {
      await evalFoldCheck();
    });
  });

  it('the direct GEMM path (1x1, stride 1) and im2col in chunks of one sample match too', async () => {
    const k = loadNativeKernels().kernels!;
    const pointwise = { x: [3, 5, 4, 8], w: [1, 1, 8, 5], stride: 1, pad: 'valid' } as Case;
    for (const [i, c, chunk] of [
      [0, pointwise, 0],
      [1, CASES[0]!, 1],
      [2, CASES[2]!, 1],
    ] as const) {
      await selectBackend('cpu');
      const shape = tf.tidy(
        () => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(c.w) as tf.Tensor4D, c.stride, c.pad).shape,
      );
      const size = (s: number[]) => s.reduce((a, b) => a * b);
      const [x, w, dy] = [seeded(size(c.x), 7 + i), seeded(size(c.w), 8 + i), seeded(size(shape), 9 + i)];
      const ref = await convGrads('cpu', c, x, w, dy, 'off', shape);
      const previous = chunk ? k.setChunkFloats(chunk) : 0;
      try {
        const got = await convGrads('wasm', c, x, w, dy, 'required', shape);
        expect(relError(got.y, ref.y)).toBeLessThan(1e-4);
        expect(relError(got.dx, ref.dx)).toBeLessThan(1e-4);
        expect(relError(got.dw, ref.dw)).toBeLessThan(1e-4);
      } finally {
        if (previous) k.setChunkFloats(previous);
      }
    }
  });

  const BN_SHAPES: [number, number, number, number][] = [
    [4, 5, 3, 7],
    [8, 2, 2, 64],
    [2, 9, 11, 3],
    [3, 1, 1, 16],
  ];

  async function bnRun(backend: 'cpu' | 'wasm', shape: [number, number, number, number], relu: boolean, seed: number) {
    await selectBackend(backend, { native: backend === 'wasm' ? 'required' : 'off' });
    return batchNormCase(shape, relu, seed);
  }

  it.each(BN_SHAPES.flatMap((s, i) => [[i, s, false] as const, [i, s, true] as const]))(
    'fused batch norm, shape %i, relu %s: values, running statistics and gradients match',
    async (i, shape, relu) => {
      const ref = await bnRun('cpu', [...shape], relu, 31 + i);
      const got = await bnRun('wasm', [...shape], relu, 31 + i);
      for (const k of Object.keys(ref) as (keyof typeof ref)[]) expect(relError(got[k], ref[k])).toBeLessThan(1e-4);
    },
  );

  async function poolGrad(backend: 'cpu' | 'wasm', shape: number[], x: Float32Array, stride: number, pad: number) {
    await selectBackend(backend, { native: backend === 'wasm' ? 'required' : 'off' });
    return tf.tidy(() => {
      const X = tf.tensor4d(x, shape as [number, number, number, number]);
      const f = (a: tf.Tensor) => {
        const y = tf.maxPool(
          a as tf.Tensor4D,
          3,
          stride,
          pad === 0
            ? 'valid'
            : [
                [0, 0],
                [pad, pad],
                [pad, pad],
                [0, 0],
              ],
        );
        return tf.sum(tf.mul(y, tf.tensor(seeded(y.size, 5), y.shape)));
      };
      return tf.grad(f)(X).dataSync() as Float32Array;
    });
  }

  it.each([
    [[2, 9, 9, 5], 2, 1],
    [[3, 8, 7, 16], 2, 0],
    [[1, 6, 6, 3], 1, 1],
  ])(
    'max-pool gradient %j stride %i pad %i matches the cpu kernel, ties to the first maximum',
    async (shape, stride, pad) => {
      const size = shape.reduce((a, b) => a * b);
      // Values rounded to a few levels so windows have ties (the first maximum in row-major order wins).
      const x = seeded(size, 77).map((v) => Math.round(v * 3) / 3);
      const ref = await poolGrad('cpu', shape, x, stride, pad);
      const got = await poolGrad('wasm', shape, x, stride, pad);
      expect(relError(got, ref)).toBeLessThan(1e-6);
    },
  );

  it.each([
    { momentum: 0.9, weightDecay: 0, nesterov: false },
    { momentum: 0.9, weightDecay: 5e-4, nesterov: false },
    { momentum: 0.8, weightDecay: 1e-3, nesterov: true },
  ])('the fused SGD step equals the unfused one over three steps (%j)', async (cfg) => {
    const run = async (native: 'off' | 'required') => {
      await selectBackend('wasm', { native });
      const opt = new Sgd(cfg);
      const p = tf.variable(tf.tensor1d(seeded(1000, 1)));
      for (let step = 0; step < 3; step++) {
        const g = tf.tensor1d(seeded(1000, 10 + step));
        tf.tidy(() => opt.apply([{ name: 'w', variable: p, grad: g }], 0.05));
        g.dispose();
      }
      const out = { p: await p.data(), buf: (await opt.exportState()).tensors.get('w.momentum_buffer')!.data };
      p.dispose();
      opt.dispose();
      return out;
    };
    const ref = await run('off');
    const got = await run('required');
    expect(relError(got.p, ref.p)).toBeLessThan(1e-6);
    expect(relError(got.buf, ref.buf)).toBeLessThan(1e-6);
  });

  it('Identity shares the buffer (reference counted) instead of copying it', async () => {
    await selectBackend('wasm', { native: 'required' });
    const before = tf.memory().numDataBuffers;
    const a = tf.tensor1d([1, 2, 3]);
    const b = tf.clone(a);
    expect(tf.memory().numDataBuffers).toBe(before + 1);
    a.dispose();
    expect(Array.from(await b.data())).toEqual([1, 2, 3]);
    b.dispose();
    expect(tf.memory().numDataBuffers).toBe(before);
  });

  it('rejects inconsistent buffers with an error that names the argument (no memory is touched)', () => {
    const k = loadNativeKernels().kernels!;
    const dims = Int32Array.of(1, 4, 4, 2, 4, 4, 3, 3, 3, 1, 1, 1, 1);
    const x = new Float32Array(32);
    const w = new Float32Array(54);
    expect(() => k.conv2dForward(x, w, new Float32Array(47), dims)).toThrow(/output: 47 values, expected 48/);
    expect(() => k.conv2dForward(x, new Float32Array(53), new Float32Array(48), dims)).toThrow(/input 1: 53 values/);
    expect(() => k.conv2dForward(x, w, new Float32Array(48), Int32Array.of(1, 2))).toThrow(/expected 13 values/);
    expect(() => k.conv2dBackpropInput(new Float32Array(48), w, new Float32Array(32), dims)).not.toThrow();
    expect(() =>
      k.batchNormTrain(
        x,
        new Float32Array(3),
        new Float32Array(2),
        x,
        new Float32Array(2),
        new Float32Array(2),
        new Float32Array(2),
        false,
      ),
    ).toThrow(/x is not \[M, C\]/);
  });

  it('frees every buffer it allocates', async () => {
    await selectBackend('wasm', { native: 'required' });
    const c = CASES[2]!;
    const before = tf.memory();
    const { x, w, dy } = caseData(c, 2);
    await convGrads('wasm', c, x, w, dy, 'required');
    const after = tf.memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numDataBuffers).toBe(before.numDataBuffers);
  });
});
