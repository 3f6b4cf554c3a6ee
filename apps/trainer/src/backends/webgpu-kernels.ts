/**
 * Training kernels of this repository for TF.js's webgpu backend (WGSL in webgpu-programs.ts):
 * - Conv2DBackpropFilter and Conv2DBackpropInput as tiled implicit GEMMs, the first with split-K (TF.js's give one
 *   thread per output element a loop over the whole reduction; NCHW goes to TF.js's);
 * - the fused train-mode batch norm (+ ReLU) forward and backward that batch-norm.ts uses when a backend has them;
 * - the fused SGD momentum step that optimizers.ts uses when a backend has it, and the running statistics' update;
 * - the forward convolution as a tiled implicit GEMM too (split-K where the output has few tiles), in training
 *   (Conv2D) and in eval mode with the batch norm folded in (+ residual, ReLU in the same store).
 * `registerWebgpuTrainingKernels(false)` restores TF.js's own kernels (the benches compare the two).
 */
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import {
  type backend_util,
  getKernel,
  type KernelConfig,
  type KernelFunc,
  registerKernel,
  type TensorInfo,
  unregisterKernel,
} from '@tensorflow/tfjs-core';
import {
  BN_RUNNING_KERNEL,
  BN_TRAIN_GRAD_KERNEL,
  BN_TRAIN_KERNEL,
  CONV_BIAS_ACT_KERNEL,
  convInfo,
  SGD_STEP_KERNEL,
} from './native-kernels';
import {
  type ConvGemmGeometry,
  type ConvInputGeometry,
  convFilterGrad,
  convFilterGradUniforms,
  convForward,
  convForwardEpilogue,
  convForwardSplits,
  convForwardUniforms,
  convInputGrad,
  convInputGradUniforms,
  filterGradSplits,
  splitSum,
} from './webgpu-conv-programs';
import { runDirect } from './webgpu-direct';
import {
  addRelu,
  bnChunks,
  bnDx,
  bnFinalizeGrad,
  bnFinalizeStats,
  bnNormalize,
  bnReduce,
  bnRunning as bnRunningProgram,
  sgdStep as sgdStepProgram,
} from './webgpu-programs';

const BACKEND = 'webgpu';
/** Batch norm's epsilon (PyTorch's default; batch-norm.ts BN_EPS, not imported to keep the backends model-free). */
const BN_EPS = 1e-5;

/**
 * Train-mode batch norm (+ residual) (+ ReLU) with the running statistics' update, webgpu only (batch-norm.ts uses
 * it when the backend has it): inputs x, gamma, beta, runningMean, runningVar[, residual]; attrs relu, keep,
 * takeMean, takeVar (running · keep + stat · take; the variance's stat is the biased batch variance, its take
 * momentum · n / (n - 1)); outputs [y, mean, invStd, runningMean', runningVar'], y = relu?(x̂ · γ + β (+ residual)).
 * Its gradient is BN_TRAIN_GRAD_KERNEL with attr residual (then a fourth output: the residual's gradient).
 */
export const BN_TRAIN_RUNNING_KERNEL = 'GpulabBatchNormTrainRunning';

/** TF.js's own kernels, for NCHW and for registerWebgpuTrainingKernels(false). */
const originals = new Map<string, KernelConfig>();

interface ConvAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

const conv2DBackpropFilter: KernelFunc = (args) => {
  const { inputs, backend, attrs } = args;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as ConvAttrs & {
    filterShape: [number, number, number, number];
  };
  const original = originals.get('Conv2DBackpropFilter');
  if (dataFormat === 'NCHW' && original) return original.kernelFunc(args);
  const info = convInfo(x.shape, filterShape, { strides, pad, dimRoundingMode });
  const g: ConvGemmGeometry = {
    ...convGeometry(info),
    m: info.filterHeight * info.filterWidth * info.inChannels,
    n: info.outChannels,
    k: info.batchSize * info.outHeight * info.outWidth,
  };
  const b = backend as WebGPUBackend;
  const { splits, kPerSplit } = filterGradSplits(g);
  const shape = splits === 1 ? [...filterShape] : [splits, g.m, g.n];
  const [parts] = runDirect(b, convFilterGrad(g, splits), [x, dy], [shape], convFilterGradUniforms(g, kPerSplit));
  if (splits === 1) return parts!;
  const size = g.m * g.n;
  const [out] = runDirect(b, splitSum(size), [parts!], [[...filterShape]], [splits, size]);
  b.disposeData(parts!.dataId);
  return out!;
};

/** The geometry the convolution programs take (webgpu-conv-programs.ts), from TF.js's conv info. */
function convGeometry(info: ReturnType<typeof convInfo>): ConvInputGeometry {
  return {
    batch: info.batchSize,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    filterHeight: info.filterHeight,
    filterWidth: info.filterWidth,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    outChannels: info.outChannels,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

const conv2DBackpropInput: KernelFunc = (args) => {
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as ConvAttrs & {
    inputShape: [number, number, number, number];
  };
  const original = originals.get('Conv2DBackpropInput');
  if (dataFormat === 'NCHW' && original) return original.kernelFunc(args);
  const info = convInfo(inputShape, filter.shape, { strides, pad, dimRoundingMode });
  const g = convGeometry(info);
  return runDirect(
    backend as WebGPUBackend,
    convInputGrad(g),
    [dy, filter],
    [inputShape],
    convInputGradUniforms(g),
  )[0]!;
};

function channels(x: TensorInfo): { c: number; rows: number } {
  const c = x.shape[x.shape.length - 1]!;
  return { c, rows: x.shape.reduce((a, d) => a * d, 1) / c };
}

/** The per-channel partial sums of x ('stats'), as [2, chunks, C]. */
function statsParts(b: WebGPUBackend, x: TensorInfo) {
  const { c, rows } = channels(x);
  const { chunks, rowsPerChunk } = bnChunks(rows, c);
  const [parts] = runDirect(
    b,
    bnReduce('stats', false, c, chunks),
    [x],
    [[2, chunks, c]],
    [rows, c, chunks, rowsPerChunk],
  );
  return { parts: parts!, c, rows, chunks };
}

function normalize(b: WebGPUBackend, inputs: TensorInfo[], relu: boolean, residual: boolean): TensorInfo {
  const x = inputs[0]!;
  const size = x.shape.reduce((a, d) => a * d, 1);
  return runDirect(b, bnNormalize(size, relu, residual), inputs, [x.shape], [channels(x).c, size])[0]!;
}

/** Outputs [y, mean, invStd, variance (biased)], as the native kernel of the same name: three dispatches. */
const bnTrain: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
  const relu = Boolean((attrs as { relu?: boolean } | undefined)?.relu);
  const b = backend as WebGPUBackend;
  const { parts, c, rows, chunks } = statsParts(b, x);
  const [mean, invStd, variance] = runDirect(
    b,
    bnFinalizeStats(c, false),
    [parts, x],
    [[c], [c], [c]],
    [c, chunks, rows, BN_EPS],
  );
  b.disposeData(parts.dataId);
  const y = normalize(b, [x, mean!, invStd!, gamma, beta], relu, false);
  return [y, mean!, invStd!, variance!];
};

/** BN_TRAIN_RUNNING_KERNEL: three dispatches (partial sums; statistics and running statistics; normalisation). */
const bnTrainRunning: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, gamma, beta, runningMean, runningVar, residual } = inputs as Record<string, TensorInfo | undefined>;
  const a = attrs as unknown as { relu?: boolean; keep: number; takeMean: number; takeVar: number };
  const b = backend as WebGPUBackend;
  const { parts, c, rows, chunks } = statsParts(b, x!);
  const [mean, invStd, newMean, newVar] = runDirect(
    b,
    bnFinalizeStats(c, true),
    [parts, x!, runningMean!, runningVar!],
    [[c], [c], [c], [c]],
    [c, chunks, rows, BN_EPS, a.keep, a.takeMean, a.takeVar],
  );
  b.disposeData(parts.dataId);
  const normInputs = [x!, mean!, invStd!, gamma!, beta!, ...(residual ? [residual] : [])];
  const y = normalize(b, normInputs, Boolean(a.relu), Boolean(residual));
  return [y, mean!, invStd!, newMean!, newVar!];
};

/**
 * Inputs dy, x, y, mean, invStd, gamma; attrs relu, residual; outputs [dx, dgamma, dbeta] and, with residual (the
 * forward added one before its ReLU), the residual's gradient (dy masked by y > 0 under ReLU): three dispatches.
 */
const bnTrainGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, x, y, mean, invStd, gamma } = inputs as Record<string, TensorInfo>;
  const a = attrs as { relu?: boolean; residual?: boolean } | undefined;
  const relu = Boolean(a?.relu);
  const residual = Boolean(a?.residual);
  const b = backend as WebGPUBackend;
  const { c, rows } = channels(x!);
  const { chunks, rowsPerChunk } = bnChunks(rows, c);
  const reduceInputs = relu ? [dy!, x!, y!, mean!, invStd!] : [dy!, x!, mean!, invStd!];
  const [parts] = runDirect(
    b,
    bnReduce('grad', relu, c, chunks),
    reduceInputs,
    [[2, chunks, c]],
    [rows, c, chunks, rowsPerChunk],
  );
  const [dgamma, dbeta, coef] = runDirect(
    b,
    bnFinalizeGrad(c),
    [parts!, mean!, invStd!, gamma!],
    [[c], [c], [5 * c]],
    [c, chunks, rows],
  );
  b.disposeData(parts!.dataId);
  const size = rows * c;
  const dxInputs = relu ? [dy!, x!, y!, coef!] : [dy!, x!, coef!];
  const dxShapes = residual ? [x!.shape, x!.shape] : [x!.shape];
  const dx = runDirect(b, bnDx(size, relu, residual), dxInputs, dxShapes, [c, size]);
  b.disposeData(coef!.dataId);
  return [dx[0]!, dgamma!, dbeta!, ...dx.slice(1)];
};

/** TF.js's webgpu kernel `name` (throws when the backend lacks it). */
function tfjsKernel(name: string): KernelFunc {
  const k = originals.get(name) ?? getKernel(name, BACKEND);
  if (!k) throw new Error(`the webgpu backend has no ${name} kernel`);
  return k.kernelFunc;
}

/**
 * Which forward convolution Conv2D (training) and convBiasAct (eval) run: `ours` (convForward; on an H200 at 224 px,
 * batch 32, faster than TF.js's FusedConv2D on every 3×3 and 7×7 layer of ResNet18 — 0.45 vs 0.69 ms in layer3, 0.49
 * vs 0.91 in layer4, where split-K fills the GPU; the 1×1 downsamples within 0.01 ms either way: docs/benchmarks.md)
 * or `tfjs` (bench/trainer/kernel-profile.ts compares them).
 */
export type ConvForwardChoice = 'ours' | 'tfjs';
let convForwardChoice: ConvForwardChoice = 'ours';
export function chooseConvForward(choice: ConvForwardChoice): void {
  convForwardChoice = choice;
}

/**
 * conv(x, filter) (+ bias, + residual, ReLU) by convForward (+ its epilogue when split): one or two dispatches; null
 * when TF.js's is chosen.
 */
function ourConv(
  b: WebGPUBackend,
  t: { x: TensorInfo; filter: TensorInfo; bias?: TensorInfo | undefined; residual?: TensorInfo | undefined },
  attrs: Pick<ConvAttrs, 'strides' | 'pad' | 'dimRoundingMode'> & { relu: boolean },
): TensorInfo | null {
  if (convForwardChoice === 'tfjs') return null;
  const info = convInfo(t.x.shape, t.filter.shape, attrs);
  const g = {
    ...convGeometry(info),
    bias: t.bias !== undefined,
    residual: t.residual !== undefined,
    relu: attrs.relu,
  };
  const { splits, kPerSplit } = convForwardSplits(g);
  const shape = [info.batchSize, info.outHeight, info.outWidth, info.outChannels];
  const extra = [...(t.bias ? [t.bias] : []), ...(t.residual ? [t.residual] : [])];
  const program = convForward(g, splits);
  if (splits === 1)
    return runDirect(b, program, [t.x, t.filter, ...extra], [shape], convForwardUniforms(g, kPerSplit))[0]!;
  const size = shape.reduce((a, d) => a * d, 1);
  const [parts] = runDirect(b, program, [t.x, t.filter], [[splits, size]], convForwardUniforms(g, kPerSplit));
  const [out] = runDirect(
    b,
    convForwardEpilogue(size, g.bias, g.residual, g.relu),
    [parts!, ...extra],
    [shape],
    [splits, info.outChannels, size],
  );
  b.disposeData(parts!.dataId);
  return out!;
}

/** Training's forward convolution (TF.js's Conv2D, whose gradients are the two kernels above): ours, NHWC. */
const conv2D: KernelFunc = (args) => {
  const { inputs, backend, attrs } = args;
  const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo };
  const a = attrs as unknown as ConvAttrs & { dilations: [number, number] | number };
  const dilated = Array.isArray(a.dilations) ? a.dilations.some((d) => d !== 1) : a.dilations !== 1;
  const original = originals.get('Conv2D');
  const ours =
    a.dataFormat === 'NCHW' || dilated
      ? null
      : ourConv(
          backend as WebGPUBackend,
          { x, filter },
          { strides: a.strides, pad: a.pad, dimRoundingMode: a.dimRoundingMode, relu: false },
        );
  if (ours) return ours;
  if (!original) throw new Error("the webgpu backend's own Conv2D kernel is missing");
  return original.kernelFunc(args);
};

/**
 * Eval mode's conv with the batch norm folded in (model/resnet18.ts): ours (ourConv: bias, residual and ReLU
 * in its store, or in the epilogue that sums its split-K parts), or TF.js's FusedConv2D (bias, and the ReLU when
 * there is no residual) then + residual and ReLU. Instead of conv, batch norm, (add,) ReLU.
 */
const convBiasAct: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, filter, bias, residual } = inputs as Record<string, TensorInfo | undefined>;
  const { strides, pad, relu } = attrs as unknown as ConvAttrs & { relu: boolean };
  const b = backend as WebGPUBackend;
  const ours = ourConv(b, { x: x!, filter: filter!, bias: bias!, residual }, { strides, pad, relu });
  if (ours) return ours;
  const conv = tfjsKernel('FusedConv2D')({
    inputs: { x: x!, filter: filter!, bias: bias! },
    backend,
    attrs: {
      strides,
      pad,
      dataFormat: 'NHWC',
      dilations: 1,
      activation: relu && !residual ? 'relu' : 'linear',
    } as never,
  }) as TensorInfo;
  if (!residual) return conv;
  if (relu) {
    // + residual and ReLU in one pass (TF.js: Add, then Relu).
    const size = conv.shape.reduce((a, d) => a * d, 1);
    const [out] = runDirect(b, addRelu(size), [conv, residual], [conv.shape], [size]);
    b.disposeData(conv.dataId);
    return out!;
  }
  const sum = tfjsKernel('Add')({ inputs: { a: conv, b: residual }, backend, attrs: {} }) as TensorInfo;
  b.disposeData(conv.dataId);
  if (!relu) return sum;
  const out = tfjsKernel('Relu')({ inputs: { x: sum }, backend, attrs: {} }) as TensorInfo;
  b.disposeData(sum.dataId);
  return out;
};

/** running · keep + stat · take (batch-norm.ts's running statistics, without BN_TRAIN_RUNNING_KERNEL). */
const bnRunning: KernelFunc = ({ inputs, backend, attrs }) => {
  const { running, stat } = inputs as { running: TensorInfo; stat: TensorInfo };
  const { keep, take } = attrs as unknown as { keep: number; take: number };
  const size = running.shape.reduce((a, d) => a * d, 1);
  return runDirect(
    backend as WebGPUBackend,
    bnRunningProgram(size),
    [running, stat],
    [running.shape],
    [keep, take, size],
  )[0]!;
};

/** Inputs p, buf, g; attrs lr, momentum, weightDecay, nesterov; outputs [p', buf'] (optimizers.ts): one dispatch. */
const sgdStep: KernelFunc = ({ inputs, backend, attrs }) => {
  const { p, buf, g } = inputs as { p: TensorInfo; buf: TensorInfo; g: TensorInfo };
  const a = attrs as unknown as { lr: number; momentum: number; weightDecay: number; nesterov: boolean };
  const size = p.shape.reduce((x, d) => x * d, 1);
  return runDirect(
    backend as WebGPUBackend,
    sgdStepProgram(size, a.nesterov),
    [p, g, buf],
    [p.shape, p.shape],
    [a.lr, a.momentum, a.weightDecay, size],
  );
};

const OURS: KernelConfig[] = [
  { kernelName: 'Conv2DBackpropFilter', backendName: BACKEND, kernelFunc: conv2DBackpropFilter },
  { kernelName: 'Conv2DBackpropInput', backendName: BACKEND, kernelFunc: conv2DBackpropInput },
  { kernelName: 'Conv2D', backendName: BACKEND, kernelFunc: conv2D },
  { kernelName: BN_TRAIN_KERNEL, backendName: BACKEND, kernelFunc: bnTrain },
  { kernelName: BN_TRAIN_RUNNING_KERNEL, backendName: BACKEND, kernelFunc: bnTrainRunning },
  { kernelName: BN_TRAIN_GRAD_KERNEL, backendName: BACKEND, kernelFunc: bnTrainGrad },
  { kernelName: SGD_STEP_KERNEL, backendName: BACKEND, kernelFunc: sgdStep },
  { kernelName: BN_RUNNING_KERNEL, backendName: BACKEND, kernelFunc: bnRunning },
  { kernelName: CONV_BIAS_ACT_KERNEL, backendName: BACKEND, kernelFunc: convBiasAct },
];

/**
 * Registers this file's kernels for webgpu (enabled) or restores TF.js's (disabled: no fused batch norm or SGD step,
 * TF.js's Conv2DBackpropFilter). Idempotent.
 */
export function registerWebgpuTrainingKernels(enabled = true): void {
  for (const k of OURS) {
    const existing = getKernel(k.kernelName, BACKEND);
    if (existing && existing.kernelFunc !== k.kernelFunc) originals.set(k.kernelName, existing);
    if (existing?.kernelFunc === k.kernelFunc && enabled) continue;
    if (existing) unregisterKernel(k.kernelName, BACKEND);
    const original = originals.get(k.kernelName);
    if (enabled) registerKernel(k);
    else if (original) registerKernel(original);
  }
}
