/**
 * The wasm convolution kernels (src/backends/wasm-kernels.ts: Conv2D, Conv2DBackpropFilter, Conv2DBackpropInput)
 * against the cpu backend's reference kernels, on random shapes with strides 1-3, symmetric/asymmetric/explicit/
 * 'same'/'valid' padding and non-square filters, under three path choices: the defaults, every XNNPACK-convolution /
 * per-tap path forced, every matmul path forced. The native addon is switched off here (native-kernels.test.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { nativeKernelsActive, selectBackend } from '../../src/backends';
import { conv2D, conv2DBackpropFilter, conv2DBackpropInput, wasmKernelTuning } from '../../src/backends/wasm-kernels';
import { CASES, caseData, convGrads, outShape } from '../helpers/conv-cases';
import { relError } from '../helpers/reference';

const TUNINGS = {
  default: { ...wasmKernelTuning },
  'xnnpack conv, per-tap dW': { matmulPathFactor: 0, singleMatmulBudget: 0 },
  'matmul everywhere': { matmulPathFactor: 1e9, singleMatmulBudget: 1e12 },
};

describe('wasm Conv2DBackpropFilter / Conv2DBackpropInput', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
    for (const c of CASES) outShape(c);
  });

  it('are the kernels registered for wasm', async () => {
    await selectBackend('wasm', { native: 'off' });
    expect(nativeKernelsActive()).toBe(false);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')?.kernelFunc).toBe(conv2DBackpropFilter);
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc).toBe(conv2DBackpropInput);
    expect(tf.getKernel('Conv2D', 'wasm')?.kernelFunc).toBe(conv2D);
    expect(tf.getKernel('GpulabBatchNormTrain', 'wasm')).toBeUndefined();
  });

  afterEach(() => Object.assign(wasmKernelTuning, TUNINGS.default));

  describe.each(Object.entries(TUNINGS))('paths: %s', (_name, tuning) => {
    it.each(CASES.map((c, i) => [i, c] as const))('case %i matches the cpu kernels (rel err < 1e-4)', async (i, c) => {
      const { x, w, dy } = caseData(c, i);
      const ref = await convGrads('cpu', c, x, w, dy);
      Object.assign(wasmKernelTuning, tuning);
      const got = await convGrads('wasm', c, x, w, dy, 'off');
      expect(got.y.length).toBe(ref.y.length);
      expect(got.dx.length).toBe(ref.dx.length);
      expect(got.dw.length).toBe(ref.dw.length);
      expect(relError(got.y, ref.y)).toBeLessThan(1e-4);
      expect(relError(got.dx, ref.dx)).toBeLessThan(1e-4);
      expect(relError(got.dw, ref.dw)).toBeLessThan(1e-4);
    });
  });

  it('frees every intermediate buffer', async () => {
    await selectBackend('wasm', { native: 'off' });
    const c = CASES[2]!;
    const before = tf.memory();
    const { x, w, dy } = caseData(c, 2);
    await convGrads('wasm', c, x, w, dy, 'off');
    const after = tf.memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numDataBuffers).toBe(before.numDataBuffers);
    expect((tf.backend() as unknown as { numDataIds(): number }).numDataIds()).toBe(before.numDataBuffers);
  });
});
