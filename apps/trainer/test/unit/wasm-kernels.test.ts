/**
 * The wasm convolution kernels (src/backends/wasm-kernels.ts: Conv2D, Conv2DBackpropFilter, Conv2DBackpropInput)
 * against the cpu backend's reference kernels, on random shapes with strides 1-3, symmetric/asymmetric/explicit/
 * 'same'/'valid' padding and non-square filters, under three path choices: the defaults, every XNNPACK-convolution /
 * per-tap path forced, every matmul path forced.
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/backends';
import { conv2D, conv2DBackpropFilter, conv2DBackpropInput, wasmKernelTuning } from '../../src/backends/wasm-kernels';
import { relError } from '../helpers/reference';

type Pad = 'valid' | 'same' | [[number, number], [number, number], [number, number], [number, number]];
interface Case {
  x: [number, number, number, number];
  w: [number, number, number, number];
  stride: number | [number, number];
  pad: Pad;
}

const explicit = (t: number, b: number, l: number, r: number): Pad => [
  [0, 0],
  [t, b],
  [l, r],
  [0, 0],
];

const CASES: Case[] = [
  { x: [2, 9, 9, 3], w: [3, 3, 3, 4], stride: 1, pad: explicit(1, 1, 1, 1) },
  { x: [2, 9, 9, 3], w: [3, 3, 3, 4], stride: 2, pad: explicit(1, 1, 1, 1) },
  { x: [2, 10, 11, 5], w: [7, 7, 5, 6], stride: 2, pad: explicit(3, 3, 3, 3) }, // ResNet's conv1 shape family
  { x: [3, 8, 8, 4], w: [1, 1, 4, 6], stride: 2, pad: 'valid' }, // downsample
  { x: [2, 7, 6, 3], w: [3, 2, 3, 4], stride: [1, 2], pad: 'same' },
  { x: [1, 12, 12, 2], w: [5, 5, 2, 3], stride: 3, pad: explicit(2, 1, 0, 2) },
  { x: [4, 4, 4, 16], w: [3, 3, 16, 8], stride: 2, pad: explicit(1, 1, 1, 1) },
  { x: [2, 2, 2, 8], w: [3, 3, 8, 8], stride: 1, pad: explicit(1, 1, 1, 1) }, // tiny map, as layer4 at 64 px
  // Few output positions next to many output channels: dX takes the matmul + col2im path.
  { x: [1, 2, 2, 16], w: [3, 3, 16, 64], stride: 1, pad: explicit(1, 1, 1, 1) },
  { x: [2, 4, 4, 8], w: [3, 3, 8, 64], stride: 2, pad: explicit(1, 1, 1, 1) },
  { x: [1, 5, 6, 3], w: [7, 7, 3, 40], stride: 2, pad: explicit(3, 3, 3, 3) },
  { x: [2, 3, 3, 4], w: [1, 1, 4, 48], stride: 2, pad: 'valid' },
];

function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

async function convGrads(backend: 'cpu' | 'wasm', c: Case, x: Float32Array, w: Float32Array, dy: Float32Array) {
  await selectBackend(backend);
  return tf.tidy(() => {
    const X = tf.tensor4d(x, c.x);
    const W = tf.tensor4d(w, c.w);
    const f = (a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), tf.tensor(dy, outShape(c))));
    const [dx, dw] = tf.grads(f)([X, W]);
    return {
      y: tf.conv2d(X, W, c.stride, c.pad).dataSync() as Float32Array,
      dx: dx!.dataSync() as Float32Array,
      dw: dw!.dataSync() as Float32Array,
    };
  });
}

const TUNINGS = {
  default: { ...wasmKernelTuning },
  'xnnpack conv, per-tap dW': { matmulPathFactor: 0, singleMatmulBudget: 0 },
  'matmul everywhere': { matmulPathFactor: 1e9, singleMatmulBudget: 1e12 },
};

let shapes: Map<Case, number[]>;
function outShape(c: Case): number[] {
  return shapes.get(c)!;
}

describe('wasm Conv2DBackpropFilter / Conv2DBackpropInput', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
    shapes = new Map(
      CASES.map((c) => [
        c,
        tf.tidy(() => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(c.w) as tf.Tensor4D, c.stride, c.pad).shape),
      ]),
    );
  });

  it('are the kernels registered for wasm', async () => {
    await selectBackend('wasm');
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')?.kernelFunc).toBe(conv2DBackpropFilter);
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc).toBe(conv2DBackpropInput);
    expect(tf.getKernel('Conv2D', 'wasm')?.kernelFunc).toBe(conv2D);
  });

  afterEach(() => Object.assign(wasmKernelTuning, TUNINGS.default));

  describe.each(Object.entries(TUNINGS))('paths: %s', (_name, tuning) => {
    it.each(CASES.map((c, i) => [i, c] as const))('case %i matches the cpu kernels (rel err < 1e-4)', async (i, c) => {
      const x = seeded(
        c.x.reduce((a, b) => a * b),
        11 + i,
      );
      const w = seeded(
        c.w.reduce((a, b) => a * b),
        101 + i,
      );
      const dy = seeded(
        outShape(c).reduce((a, b) => a * b),
        1001 + i,
      );
      const ref = await convGrads('cpu', c, x, w, dy);
      Object.assign(wasmKernelTuning, tuning);
      const got = await convGrads('wasm', c, x, w, dy);
      expect(got.y.length).toBe(ref.y.length);
      expect(got.dx.length).toBe(ref.dx.length);
      expect(got.dw.length).toBe(ref.dw.length);
      expect(relError(got.y, ref.y)).toBeLessThan(1e-4);
      expect(relError(got.dx, ref.dx)).toBeLessThan(1e-4);
      expect(relError(got.dw, ref.dw)).toBeLessThan(1e-4);
    });
  });

  it('frees every intermediate buffer', async () => {
    await selectBackend('wasm');
    const c = CASES[2]!;
    const before = tf.memory();
    await convGrads(
      'wasm',
      c,
      seeded(
        c.x.reduce((a, b) => a * b),
        1,
      ),
      seeded(
        c.w.reduce((a, b) => a * b),
        2,
      ),
      seeded(
        outShape(c).reduce((a, b) => a * b),
        3,
      ),
    );
    const after = tf.memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numDataBuffers).toBe(before.numDataBuffers);
    expect((tf.backend() as unknown as { numDataIds(): number }).numDataIds()).toBe(before.numDataBuffers);
  });
});
