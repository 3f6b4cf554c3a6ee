/**
 * Training kernels of this repository for TF.js's webgpu backend (WGSL in webgpu-programs.ts):
 * - Conv2DBackpropFilter and Conv2DBackpropInput as tiled implicit GEMMs, the first with split-K (TF.js's give one
 *   thread per output element a loop over the whole reduction; NCHW goes to TF.js's);
 * - the fused train-mode batch norm (+ ReLU) forward and backward that batch-norm.ts uses when a backend has them;
 * - the fused SGD momentum step that optimizers.ts uses when a backend has it, and the running statistics' update;
 * - eval mode's conv with folded batch norm (+ residual, ReLU) through TF.js's FusedConv2D.
 * `registerWebgpuTrainingKernels(false)` restores TF.js's own kernels (the benches compare the two).
 */
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import {
  type backend_util,
  type DataType,
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
  ConvFilterGradProgram,
  type ConvGemmGeometry,
  ConvInputGradProgram,
  filterGradSplits,
  SplitSumProgram,
} from './webgpu-conv-programs';
import {
  BnDxProgram,
  type BnFinalizeKind,
  BnFinalizeProgram,
  BnNormalizeProgram,
  BnReduceProgram,
  BnRunningProgram,
  bnChunks,
  SgdStepProgram,
} from './webgpu-programs';

const BACKEND = 'webgpu';
/** Batch norm's epsilon (PyTorch's default; batch-norm.ts BN_EPS, not imported to keep the backends model-free). */
const BN_EPS = 1e-5;

type Uniform = { type: string; data: number[] };
const int = (...v: number[]): Uniform[] => v.map((d) => ({ type: 'int32', data: [d] }));
const float = (...v: number[]): Uniform[] => v.map((d) => ({ type: 'float32', data: [d] }));

function run(b: WebGPUBackend, p: WebGPUProgram, inputs: TensorInfo[], uniforms: Uniform[]): TensorInfo {
  return b.runWebGPUProgram(p, inputs, 'float32' as DataType, uniforms as never);
}

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
    m: info.filterHeight * info.filterWidth * info.inChannels,
    n: info.outChannels,
    k: info.batchSize * info.outHeight * info.outWidth,
    inHeight: info.inHeight,
    inWidth: info.inWidth,
    inChannels: info.inChannels,
    filterWidth: info.filterWidth,
    outHeight: info.outHeight,
    outWidth: info.outWidth,
    strideHeight: info.strideHeight,
    strideWidth: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
  const b = backend as WebGPUBackend;
  const { splits, kPerSplit } = filterGradSplits(g);
  const shape = splits === 1 ? [...filterShape] : [splits, g.m, g.n];
  const gemm = new ConvFilterGradProgram(g, splits, kPerSplit, shape);
  const parts = run(b, gemm, [x, dy], gemm.uniformData());
  if (splits === 1) return parts;
  const out = run(b, new SplitSumProgram([...filterShape]), [parts], int(splits));
  b.disposeData(parts.dataId);
  return out;
};

const conv2DBackpropInput: KernelFunc = (args) => {
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs as unknown as ConvAttrs & {
    inputShape: [number, number, number, number];
  };
  const original = originals.get('Conv2DBackpropInput');
  if (dataFormat === 'NCHW' && original) return original.kernelFunc(args);
  const info = convInfo(inputShape, filter.shape, { strides, pad, dimRoundingMode });
  const program = new ConvInputGradProgram({
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
  });
  return run(backend as WebGPUBackend, program, [dy, filter], program.uniformData());
};

function channels(x: TensorInfo): { c: number; rows: number } {
  const c = x.shape[x.shape.length - 1]!;
  return { c, rows: x.shape.reduce((a, d) => a * d, 1) / c };
}

function finalize(b: WebGPUBackend, kind: BnFinalizeKind, inputs: TensorInfo[], c: number, chunks: number, n: number) {
  return run(b, new BnFinalizeProgram(kind, c), inputs, [...int(c, chunks), ...float(n, BN_EPS)]);
}

/** Outputs [y, mean, invStd, variance (biased)], as the native kernel of the same name. */
const bnTrain: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
  const relu = Boolean((attrs as { relu?: boolean } | undefined)?.relu);
  const b = backend as WebGPUBackend;
  const { c, rows } = channels(x);
  const { chunks, rowsPerChunk } = bnChunks(rows, c);
  const parts = run(b, new BnReduceProgram('stats', false, c, chunks), [x], int(rows, c, chunks, rowsPerChunk));
  const mean = finalize(b, 'mean', [parts, x], c, chunks, rows);
  const invStd = finalize(b, 'invStd', [parts], c, chunks, rows);
  const variance = finalize(b, 'variance', [parts], c, chunks, rows);
  b.disposeData(parts.dataId);
  const y = run(b, new BnNormalizeProgram([...x.shape], relu), [x, mean, invStd, gamma, beta], int(c));
  return [y, mean, invStd, variance];
};

/** Inputs dy, x, y, mean, invStd, gamma; outputs [dx, dgamma, dbeta]. */
const bnTrainGrad: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, x, y, mean, invStd, gamma } = inputs as Record<string, TensorInfo>;
  const relu = Boolean((attrs as { relu?: boolean } | undefined)?.relu);
  const b = backend as WebGPUBackend;
  const { c, rows } = channels(x!);
  const { chunks, rowsPerChunk } = bnChunks(rows, c);
  const reduceInputs = relu ? [dy!, x!, y!, mean!, invStd!] : [dy!, x!, mean!, invStd!];
  const parts = run(b, new BnReduceProgram('grad', relu, c, chunks), reduceInputs, int(rows, c, chunks, rowsPerChunk));
  const dbeta = finalize(b, 'dbeta', [parts], c, chunks, rows);
  const dgamma = finalize(b, 'dgamma', [parts], c, chunks, rows);
  const coef = finalize(b, 'dxCoef', [parts, mean!, invStd!, gamma!], c, chunks, rows);
  b.disposeData(parts.dataId);
  const dx = run(b, new BnDxProgram([...x!.shape], relu), relu ? [dy!, x!, y!, coef] : [dy!, x!, coef], int(c));
  b.disposeData(coef.dataId);
  return [dx, dgamma, dbeta];
};

/** TF.js's webgpu kernel `name` (throws when the backend lacks it). */
function tfjsKernel(name: string): KernelFunc {
  const k = originals.get(name) ?? getKernel(name, BACKEND);
  if (!k) throw new Error(`the webgpu backend has no ${name} kernel`);
  return k.kernelFunc;
}

/**
 * Eval mode's conv with the batch norm folded in (model/resnet18.ts): TF.js's FusedConv2D (bias, and the ReLU when
 * there is no residual) in one dispatch, then + residual and ReLU. Instead of conv, batch norm, (add,) ReLU.
 */
const convBiasAct: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, filter, bias, residual } = inputs as Record<string, TensorInfo | undefined>;
  const { strides, pad, relu } = attrs as unknown as ConvAttrs & { relu: boolean };
  const b = backend as WebGPUBackend;
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
  const sum = tfjsKernel('Add')({ inputs: { a: conv, b: residual }, backend, attrs: {} }) as TensorInfo;
  b.disposeData(conv.dataId);
  if (!relu) return sum;
  const out = tfjsKernel('Relu')({ inputs: { x: sum }, backend, attrs: {} }) as TensorInfo;
  b.disposeData(sum.dataId);
  return out;
};

/** running · keep + stat · take (batch-norm.ts's running statistics). */
const bnRunning: KernelFunc = ({ inputs, backend, attrs }) => {
  const { running, stat } = inputs as { running: TensorInfo; stat: TensorInfo };
  const { keep, take } = attrs as unknown as { keep: number; take: number };
  const program = new BnRunningProgram([...running.shape]);
  return run(backend as WebGPUBackend, program, [running, stat], float(keep, take));
};

/** Inputs p, buf, g; attrs lr, momentum, weightDecay, nesterov; outputs [p', buf'] (optimizers.ts). */
const sgdStep: KernelFunc = ({ inputs, backend, attrs }) => {
  const { p, buf, g } = inputs as { p: TensorInfo; buf: TensorInfo; g: TensorInfo };
  const a = attrs as unknown as { lr: number; momentum: number; weightDecay: number; nesterov: boolean };
  const b = backend as WebGPUBackend;
  const u = float(a.lr, a.momentum, a.weightDecay);
  const buf1 = run(b, new SgdStepProgram([...p.shape], 'buffer', a.nesterov), [p, g, buf], u);
  const param = new SgdStepProgram([...p.shape], 'param', a.nesterov);
  const p1 = run(b, param, a.nesterov ? [p, g, buf1] : [p, buf1], u);
  return [p1, buf1];
};

const OURS: KernelConfig[] = [
  { kernelName: 'Conv2DBackpropFilter', backendName: BACKEND, kernelFunc: conv2DBackpropFilter },
  { kernelName: 'Conv2DBackpropInput', backendName: BACKEND, kernelFunc: conv2DBackpropInput },
  { kernelName: BN_TRAIN_KERNEL, backendName: BACKEND, kernelFunc: bnTrain },
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
