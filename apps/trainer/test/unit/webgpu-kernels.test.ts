/**
 * The webgpu training kernels (src/backends/webgpu-kernels.ts, WGSL in webgpu-programs.ts) against the cpu backend's
 * reference kernels, on a real WebGPU implementation: Dawn (the `webgpu` package) on its GL ES backend over Mesa's
 * llvmpipe, in compatibility mode, since this machine has no GPU (`.ci/run` installs Mesa's EGL/GLES). The same
 * shaders run on Vulkan on the GPU machines (bench/trainer/gpu.sh). Relative error under 1e-4 in float32.
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/backends';
import { convForwardSplits, filterGradSplits } from '../../src/backends/webgpu-conv-programs';
import { directDispatchCount, limitWorkgroupsForTest, missingInternals } from '../../src/backends/webgpu-direct';
import { chooseConvForward } from '../../src/backends/webgpu-kernels';
import { type BatchNormParams, batchNormTrain } from '../../src/model/batch-norm';
import { referenceStateDict } from '../../src/model/reference-init';
import { ResNet18 } from '../../src/model/resnet18';
import { loadStateDict } from '../../src/model/weights';
import { freezePlan } from '../../src/train/freeze';
import { Sgd } from '../../src/train/optimizers';
import { disposeStep, trainStep } from '../../src/train/step';
import { batchNormCase } from '../helpers/batch-norm-case';
import { CASES, type Case, explicit, seeded } from '../helpers/conv-cases';
import { relError } from '../helpers/reference';

/**
 * Where a computation runs. The cpu backend is the reference for small shapes; for the stem-sized case and the whole
 * ResNet18 step it takes minutes under jest, so the reference there is wasm with the native kernels (themselves
 * checked against the cpu backend in native-kernels.test.ts).
 */
type Where = 'cpu' | 'wasm' | 'webgpu' | 'webgpu-tfjs';

async function use(where: Where): Promise<void> {
  if (where === 'cpu' || where === 'wasm') await selectBackend(where);
  else
    await selectBackend('webgpu', {
      webgpu: { dawnFlags: ['backend=opengles'], featureLevel: 'compatibility', kernels: where === 'webgpu' },
    });
}

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

async function convGrads(where: Where, c: Case, seed: number) {
  await use(where);
  const yShape = tf.tidy(
    () => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(c.w) as tf.Tensor4D, c.stride, c.pad).shape,
  );
  const [x, w, dy] = [seeded(size(c.x), seed), seeded(size(c.w), seed + 1), seeded(size(yShape), seed + 2)];
  const out = tf.tidy(() => {
    const X = tf.tensor4d(x, c.x);
    const W = tf.tensor4d(w, c.w);
    const f = (a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), tf.tensor(dy, yShape)));
    return [...tf.grads(f)([X, W]), tf.conv2d(X, W, c.stride, c.pad)];
  });
  const r = { dx: await out[0]!.data(), dw: await out[1]!.data(), y: await out[2]!.data() };
  tf.dispose(out);
  return r;
}

// Shapes beyond the shared cases: several 64×64 output tiles with ragged edges, and the stem's geometry (7×7, stride
// 2, 3 input channels), whose long reduction is split across workgroups and summed by a second pass.
const MORE: Case[] = [
  { x: [2, 6, 6, 16], w: [3, 3, 16, 80], stride: 1, pad: explicit(1, 1, 1, 1) },
  { x: [4, 30, 30, 3], w: [7, 7, 3, 64], stride: 2, pad: explicit(3, 3, 3, 3) },
  { x: [3, 9, 9, 70], w: [1, 1, 70, 33], stride: 2, pad: 'valid' },
];

describe('webgpu training kernels (Dawn on llvmpipe)', () => {
  it('the stem-like case really takes the split-K path (a reduction split over workgroups, then summed)', () => {
    const g = { m: 147, n: 64, k: 4 * 15 * 15, inHeight: 30, inWidth: 30, inChannels: 3, filterWidth: 7 };
    const geometry = { ...g, outHeight: 15, outWidth: 15, strideHeight: 2, strideWidth: 2, padTop: 3, padLeft: 3 };
    expect(filterGradSplits(geometry).splits).toBeGreaterThan(1);
    expect(filterGradSplits({ ...geometry, k: 64 }).splits).toBe(1);
  });

  it.each([...CASES, ...MORE].map((c, i) => [i, c] as const))(
    'Conv2D, Conv2DBackpropFilter and Conv2DBackpropInput, case %i, match the reference (%j)',
    async (i, c) => {
      const ref = await convGrads(size(c.x) > 5000 ? 'wasm' : 'cpu', c, 40 + i);
      const got = await convGrads('webgpu', c, 40 + i);
      expect(relError(got.y, ref.y)).toBeLessThan(1e-4);
      expect(relError(got.dw, ref.dw)).toBeLessThan(1e-4);
      expect(relError(got.dx, ref.dx)).toBeLessThan(1e-4);
    },
  );

  async function bnRun(where: Where, shape: [number, number, number, number], relu: boolean, seed: number) {
    await use(where);
    return batchNormCase(shape, relu, seed, 3); // + 3: the shifted sums must not rely on a zero mean
  }

  const BN_SHAPES: [number, number, number, number][] = [
    [4, 5, 3, 7],
    [8, 2, 2, 64],
    [2, 9, 11, 3],
    [4, 16, 16, 96], // several channel blocks and row chunks
  ];

  it.each(BN_SHAPES.flatMap((s, i) => [[i, s, false] as const, [i, s, true] as const]))(
    'fused batch norm, shape %i, relu %s: values, running statistics and gradients match',
    async (i, shape, relu) => {
      const ref = await bnRun('cpu', [...shape], relu, 31 + i);
      const got = await bnRun('webgpu', [...shape], relu, 31 + i);
      for (const k of Object.keys(ref) as (keyof typeof ref)[]) expect(relError(got[k], ref[k])).toBeLessThan(1e-4);
    },
  );

  /** relu(bn(x) + r) in train mode: values, running statistics, gradients to x, weight, bias and the residual r. */
  async function residualBn(where: Where, shape: [number, number, number, number], seed: number) {
    await use(where);
    const c = shape[3];
    const n = size(shape);
    const p: BatchNormParams = {
      weight: tf.tensor1d(seeded(c, seed + 1).map((v) => v + 1.5)),
      bias: tf.tensor1d(seeded(c, seed + 2)),
      runningMean: tf.variable(tf.tensor1d(seeded(c, seed + 3))),
      runningVar: tf.variable(tf.tensor1d(seeded(c, seed + 4).map((v) => v + 2))),
    };
    const x = tf.tensor4d(
      seeded(n, seed).map((v, i) => v * (1 + (i % c)) + (i % c) * 0.5 + 3),
      shape,
    );
    const r = tf.tensor4d(seeded(n, seed + 6), shape);
    const dy = tf.tensor4d(seeded(n, seed + 5), shape);
    const f = (xi: tf.Tensor, g: tf.Tensor, b: tf.Tensor, ri: tf.Tensor) =>
      tf.sum(
        tf.mul(
          batchNormTrain(
            xi as tf.Tensor4D,
            { ...p, weight: g as tf.Tensor1D, bias: b as tf.Tensor1D },
            true,
            ri as tf.Tensor4D,
          ),
          dy,
        ),
      );
    const y = batchNormTrain(x, p, true, r);
    const grads = tf.grads(f)([x, p.weight, p.bias, r]);
    const out = {
      y: await y.data(),
      dx: await grads[0]!.data(),
      dgamma: await grads[1]!.data(),
      dbeta: await grads[2]!.data(),
      dresidual: await grads[3]!.data(),
      runningMean: await p.runningMean.data(),
      runningVar: await p.runningVar.data(),
    };
    tf.dispose([x, r, y, dy, p.weight, p.bias, p.runningMean, p.runningVar, ...grads]);
    return out;
  }

  it.each(BN_SHAPES.map((s, i) => [i, s] as const))(
    'batch norm + residual + ReLU in one kernel, shape %i: values, running statistics and all four gradients match',
    async (i, shape) => {
      const ref = await residualBn('cpu', [...shape], 61 + i);
      const start = directDispatchCount();
      const got = await residualBn('webgpu', [...shape], 61 + i);
      // forward twice (the value and under tf.grads), 3 dispatches each, and one backward of 3
      expect(directDispatchCount() - start).toBe(9);
      for (const k of Object.keys(ref) as (keyof typeof ref)[]) expect(relError(got[k], ref[k])).toBeLessThan(1e-4);
      expect(Math.min(...got.dresidual.map(Math.abs))).toBe(0); // the ReLU masked some
    },
  );

  it('a flat dispatch over the per-dimension workgroup limit is folded as TF.js folds it, same results', async () => {
    await use('webgpu');
    const n = 20160; // 79 workgroups of 256
    const [p, buf, g] = [1, 2, 3].map((seed) => tf.tensor1d(seeded(n, seed)));
    const attrs = { lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true };
    const run = async (limit: number | null) => {
      limitWorkgroupsForTest(tf.backend() as never, limit);
      try {
        const outs = tf.engine().runKernel('GpulabSgdStep', { p: p!, buf: buf!, g: g! }, attrs as never) as tf.Tensor[];
        const v = await Promise.all(outs.map((t) => t.data()));
        tf.dispose(outs);
        return v.map((a) => Array.from(a));
      } finally {
        limitWorkgroupsForTest(tf.backend() as never, null);
      }
    };
    const flat = await run(null);
    const square = await run(10); // 79 > 10: 9 × 9 workgroups
    const cube = await run(8); // 9 > 8 too: 5 × 5 × 5
    tf.dispose([p!, buf!, g!]);
    expect(square).toEqual(flat);
    expect(cube).toEqual(flat);
    expect(flat[0]!.length).toBe(n);
  });

  it("the direct dispatch path finds every TF.js internal it uses, and BN_TRAIN_KERNEL's outputs are the moments", async () => {
    await use('webgpu');
    expect(missingInternals(tf.backend())).toEqual([]);
    expect(missingInternals({})).toContain('uploadToGPU');
    const shape: [number, number, number, number] = [3, 5, 4, 6];
    const x = tf.tensor4d(
      seeded(size(shape), 5).map((v, i) => v * (1 + (i % 6)) + 2),
      shape,
    );
    const [gamma, beta] = [tf.tensor1d(seeded(6, 6)), tf.tensor1d(seeded(6, 7))];
    const outs = tf
      .engine()
      .runKernel('GpulabBatchNormTrain', { x, gamma, beta }, { relu: false } as never) as tf.Tensor[];
    const [y, mean, invStd, variance] = await Promise.all(outs.map((t) => t.data()));
    const xs = Array.from(await x.data());
    const [gs, bs] = [await gamma.data(), await beta.data()];
    tf.dispose([x, gamma, beta, ...outs]);
    const m = Array.from({ length: 6 }, (_, c) => xs.filter((_, i) => i % 6 === c).reduce((a, v) => a + v, 0) / 60);
    const v = m.map((mc, c) => xs.filter((_, i) => i % 6 === c).reduce((a, x1) => a + (x1 - mc) ** 2, 0) / 60);
    const yRef = Array.from(xs, (x1, i) => ((x1 - m[i % 6]!) / Math.sqrt(v[i % 6]! + 1e-5)) * gs[i % 6]! + bs[i % 6]!);
    expect(relError(mean!, m)).toBeLessThan(1e-5);
    expect(relError(variance!, v)).toBeLessThan(1e-4);
    expect(
      relError(
        invStd!,
        v.map((vc) => 1 / Math.sqrt(vc + 1e-5)),
      ),
    ).toBeLessThan(1e-4);
    expect(relError(y!, yRef)).toBeLessThan(1e-4);
  });

  it.each([
    { momentum: 0.9, weightDecay: 0, nesterov: false },
    { momentum: 0.8, weightDecay: 1e-3, nesterov: true },
  ])('the fused SGD step equals the composed one over three steps (%j)', async (cfg) => {
    const run = async (where: Where) => {
      await use(where);
      const opt = new Sgd(cfg);
      const p = tf.variable(tf.tensor2d(seeded(1000, 1), [40, 25]));
      for (let step = 0; step < 3; step++) {
        const g = tf.tensor2d(seeded(1000, 10 + step), [40, 25]);
        tf.tidy(() => opt.apply([{ name: 'w', variable: p, grad: g }], 0.05));
        g.dispose();
      }
      const out = { p: await p.data(), buf: (await opt.exportState()).tensors.get('w.momentum_buffer')!.data };
      p.dispose();
      opt.dispose();
      return out;
    };
    const ref = await run('cpu');
    const got = await run('webgpu');
    expect(relError(got.p, ref.p)).toBeLessThan(1e-6);
    expect(relError(got.buf, ref.buf)).toBeLessThan(1e-6);
  });

  it("the forward convolution (+ bias, + residual, ReLU; split-K or not) gives the cpu backend's, on every shape", async () => {
    // eval mode's conv kernel (this repository's GEMM: convForward), against conv2d + bias (+ residual),
    // ReLU on cpu; two extra shapes whose reduction is long enough to be split (the layer3/layer4 case)
    const SPLIT: Case[] = [
      { x: [2, 5, 5, 64], w: [3, 3, 64, 40], stride: 1, pad: explicit(1, 1, 1, 1) },
      { x: [3, 6, 7, 48], w: [3, 3, 48, 70], stride: 2, pad: explicit(1, 1, 1, 1) },
    ];
    const splits = convForwardSplits({
      batch: 2,
      inHeight: 5,
      inWidth: 5,
      inChannels: 64,
      filterHeight: 3,
      filterWidth: 3,
      outHeight: 5,
      outWidth: 5,
      outChannels: 40,
      strideHeight: 1,
      strideWidth: 1,
      padTop: 1,
      padLeft: 1,
    }).splits;
    expect(splits).toBe(4); // SPLIT[0]: its reduction in 4 parts, then the epilogue sums them
    let seed = 40;
    for (const c of [...CASES, ...MORE, ...SPLIT])
      for (const [residual, relu] of [
        [false, true],
        [true, true],
        [true, false],
      ] as const) {
        seed += 3;
        const run = async (where: Where) => {
          await use(where);
          const yShape = tf.tidy(
            () => tf.conv2d(tf.zeros(c.x) as tf.Tensor4D, tf.zeros(c.w) as tf.Tensor4D, c.stride, c.pad).shape,
          );
          const x = tf.tensor4d(seeded(size(c.x), seed), c.x);
          const w = tf.tensor4d(seeded(size(c.w), seed + 1), c.w);
          const b = tf.tensor1d(seeded(c.w[3], seed + 2));
          const r = residual ? tf.tensor4d(seeded(size(yShape), seed + 3), yShape) : null;
          const y =
            where === 'cpu'
              ? tf.tidy(() => {
                  const sum = tf.add(tf.conv2d(x, w, c.stride, c.pad), b);
                  const all = r ? tf.add(sum, r) : sum;
                  return relu ? tf.relu(all) : all;
                })
              : (tf
                  .engine()
                  .runKernel('GpulabConv2DBiasAct', { x, filter: w, bias: b, ...(r ? { residual: r } : {}) }, {
                    strides: c.stride,
                    pad: c.pad,
                    relu,
                  } as never) as tf.Tensor);
          const v = await y.data();
          tf.dispose([x, w, b, y, ...(r ? [r] : [])]);
          return v;
        };
        const ref = await run('cpu');
        const got = await run('webgpu'); // (ours is the default: chooseConvForward)
        expect({ c, residual, relu, err: relError(got, ref) < 1e-4 }).toEqual({ c, residual, relu, err: true });
      }
  });

  it('eval mode (batch norm folded into the convolution, + residual, ReLU) gives the reference logits and sees changes', async () => {
    const logits = async (where: Where) => {
      await use(where);
      const model = new ResNet18(5);
      loadStateDict(model, referenceStateDict(1, 5));
      const x = seeded(2 * 40 * 40 * 3, 3);
      const run = async () => {
        const t = tf.tidy(() => model.forward(tf.tensor4d(x, [2, 40, 40, 3])));
        const v = await t.data();
        t.dispose();
        return v;
      };
      const first = await run();
      const rv = model.variable('layer2.0.bn1.running_var');
      rv.assign(tf.tidy(() => tf.mul(rv, 3)));
      const second = await run();
      model.dispose();
      return { first, second };
    };
    const ref = await logits('wasm');
    expect(tf.getKernel('GpulabConv2DBiasAct', 'webgpu')).toBeDefined();
    const got = await logits('webgpu');
    expect(relError(got.first, ref.first)).toBeLessThan(1e-4);
    expect(relError(got.second, ref.second)).toBeLessThan(1e-4);
    expect(relError(got.second, got.first)).toBeGreaterThan(1e-3); // the change was seen, not a stale fold
    // the same with TF.js's FusedConv2D for the convolutions (kernel-profile.ts's comparison)
    chooseConvForward('tfjs');
    try {
      const tfjs = await logits('webgpu');
      expect(relError(tfjs.first, ref.first)).toBeLessThan(1e-4);
      expect(relError(tfjs.second, ref.second)).toBeLessThan(1e-4);
    } finally {
      chooseConvForward('ours');
    }
  });

  it("a full fine-tuning step of ResNet18 gives the wasm backend's loss, gradients and update, leaking nothing", async () => {
    // 64 px, batch 6: layer4's batch norms see 24 values per channel (at 32 px and batch 3 they see 3, and the second
    // step's loss already differs by 1-2 % between the cpu and wasm backends themselves).
    const names = ['conv1.weight', 'bn1.weight', 'layer2.0.conv1.weight', 'layer4.1.bn2.weight', 'fc.weight'];
    const step = async (where: Where) => {
      await use(where);
      const model = new ResNet18(4);
      loadStateDict(model, referenceStateDict(5, 4));
      const opt = new Sgd({ momentum: 0.9, weightDecay: 1e-4, nesterov: false });
      const plan = freezePlan({ mode: 'full' }, model);
      const n = 6;
      const batch = { x: seeded(n * 64 * 64 * 3, 9), y: Int32Array.from({ length: n }, (_, i) => i % 4), n };
      const opts = { imageSize: 64, lr: 0.05, labelSmoothing: 0, gradClipNorm: null, gradNormsOf: names };
      const before = await model.variable('fc.weight').data();
      const r = trainStep(model, opt, plan, batch, opts);
      const loss = (await r.loss.data())[0]!;
      const norms: number[] = [];
      for (const name of names) norms.push((await r.gradNorms.get(name)!.data())[0]!);
      disposeStep(r);
      const after = await model.variable('fc.weight').data();
      const update = after.map((v, i) => v - before[i]!);
      const runningVar = await model.variable('layer1.0.bn1.running_var').data();
      const alive = tf.memory().numTensors;
      disposeStep(trainStep(model, opt, plan, batch, opts)); // a second step, with momentum: nothing left behind
      const leaked = tf.memory().numTensors - alive;
      opt.dispose();
      model.dispose();
      return { loss, norms, update, runningVar, leaked };
    };
    const ref = await step('wasm');
    const got = await step('webgpu');
    // Gradients are compared by norm, fc's update element by element. Elementwise, conv1's gradient differs by ~2e-3
    // between any two backends here (the wasm backend with and without its native kernels too): rounding differences
    // in the forward pass flip which of two nearly equal values a max-pool window passes its gradient to.
    expect(Math.abs(got.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
    expect(relError(got.norms, ref.norms)).toBeLessThan(1e-4);
    expect(relError(got.update, ref.update)).toBeLessThan(1e-4);
    expect(relError(got.runningVar, ref.runningVar)).toBeLessThan(1e-4);
    expect(got.leaked).toBe(0);
  });

  it("registerWebgpuTrainingKernels(false) restores TF.js's kernels, which agree too", async () => {
    const c = MORE[1]!;
    const ref = await convGrads('wasm', c, 7);
    const tfjs = await convGrads('webgpu-tfjs', c, 7);
    expect(tf.getKernel('GpulabBatchNormTrain', 'webgpu')).toBeUndefined();
    expect(relError(tfjs.dw, ref.dw)).toBeLessThan(1e-4);
    await use('webgpu');
    expect(tf.getKernel('GpulabBatchNormTrain', 'webgpu')).toBeDefined();
  });
});
