/**
 * Native CPU kernels for the wasm backend (apps/trainer/native/kernels.c, built by apps/trainer/native/build.sh).
 *
 * WebAssembly gives the trainer one thread and 128-bit SIMD without FMA: XNNPACK's convolutions reach about a sixth of
 * what the same two cores do natively, and convolutions are ~80 % of a ResNet18 training step. On CPU nodes the
 * trainer therefore runs its convolutions (forward, filter gradient, input gradient) and its train-mode batch norm
 * (+ ReLU, fused) in a small C addon: convolution forward on oneDNN when the build found it (the library PyTorch's
 * CPU convolutions use), everything else on im2col + OpenBLAS, threaded over the cores. The addon works in place on
 * the wasm heap (Float32Array views of the backend's memory), so no tensor is copied; every other op stays on wasm.
 *
 * The addon is optional: without it (not built, or OpenBLAS missing) the wasm kernels of wasm-kernels.ts run.
 * `GPULAB_NATIVE_KERNELS` (trainer config) picks: auto (use when built), off, required (fail when missing).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { backend_util, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { WasmBackend } from './wasm-composer';

export interface NativeKernels {
  conv2dForward(x: Float32Array, w: Float32Array, y: Float32Array, dims: Int32Array): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, dims: Int32Array): void;
  conv2dBackpropInput(dy: Float32Array, w: Float32Array, dx: Float32Array, dims: Int32Array): void;
  batchNormTrain(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    y: Float32Array,
    mean: Float32Array,
    invStd: Float32Array,
    variance: Float32Array,
    relu: boolean,
  ): void;
  batchNormTrainGrad(
    dy: Float32Array,
    x: Float32Array,
    y: Float32Array,
    mean: Float32Array,
    invStd: Float32Array,
    gamma: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
    relu: boolean,
  ): void;
  conv2dBiasAct(
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array,
    residual: Float32Array | null,
    y: Float32Array,
    dims: Int32Array,
    relu: boolean,
    weightKey?: number,
  ): void;
  maxPoolGrad(dy: Float32Array, x: Float32Array, dx: Float32Array, dims: Int32Array): void;
  /** One SGD step with an existing momentum buffer; params = [lr, momentum, weightDecay, nesterov 0|1]. */
  sgdStep(
    p: Float32Array,
    buf: Float32Array,
    g: Float32Array,
    pOut: Float32Array,
    bufOut: Float32Array,
    params: Float32Array,
  ): void;
  /** True when the addon was built with oneDNN (convolution forward on it). */
  readonly onednn: boolean;
  /** Routes convolution forward to oneDNN (true, the default) or im2col + BLAS; returns the previous setting. */
  useOneDnn(on: boolean): boolean;
  /** Sets the im2col buffer bound (floats, default 8 Mi); returns the previous one. */
  setChunkFloats(n: number): number;
  /**
   * Sets the BLAS thread count for large products when n > 0 and, with `smallMflops`, the size below which a product
   * runs on one thread (default 16 MFLOP); returns the thread count for large products.
   */
  setThreads(n?: number, smallMflops?: number): number;
}

export type NativeMode = 'auto' | 'off' | 'required';

/** Where build.sh writes the addon (relative to this file: src/backends -> native/build). */
export function nativeKernelsPath(): string {
  const here = typeof __dirname === 'string' ? __dirname : process.cwd();
  return path.resolve(here, '..', '..', 'native', 'build', 'gpulab_kernels.node');
}

export interface NativeLoad {
  kernels: NativeKernels | null;
  /** Why there are none (not built, failed to load), for the job log. */
  reason: string | null;
}

let loaded: NativeLoad | undefined;

/** Loads the addon once. Never throws: a missing or broken build is reported in `reason`. */
export function loadNativeKernels(file = nativeKernelsPath()): NativeLoad {
  if (loaded) return loaded;
  if (!existsSync(file)) {
    loaded = { kernels: null, reason: `not built (${file} missing; run apps/trainer/native/build.sh)` };
    return loaded;
  }
  try {
    loaded = { kernels: createRequire(file)(file) as NativeKernels, reason: null };
  } catch (e) {
    loaded = { kernels: null, reason: `failed to load ${file}: ${(e as Error).message}` };
  }
  return loaded;
}

/**
 * The custom kernels' names (registered for wasm when the addon is active, and for webgpu by webgpu-kernels.ts;
 * batch-norm.ts and optimizers.ts check for them).
 */
export const BN_TRAIN_KERNEL = 'GpulabBatchNormTrain';
export const BN_TRAIN_GRAD_KERNEL = 'GpulabBatchNormTrainGrad';
/** Eval-mode conv with folded batch norm: inputs x, filter, bias[, residual]; attrs strides, pad, relu (model/resnet18.ts). */
export const CONV_BIAS_ACT_KERNEL = 'GpulabConv2DBiasAct';
/** Fused SGD step (optimizers.ts uses it when registered): inputs p, buf, g; outputs [p', buf']. */
export const SGD_STEP_KERNEL = 'GpulabSgdStep';
/**
 * A running statistic's update in one pass (batch-norm.ts uses it when registered; webgpu only): inputs running,
 * stat; attrs keep, take; output running · keep + stat · take.
 */
export const BN_RUNNING_KERNEL = 'GpulabBnRunningUpdate';

type ConvPad = 'valid' | 'same' | number | backend_util.ExplicitPadding;

/** n h w ci oh ow co kh kw sh sw padTop padLeft, as kernels.c reads them. */
function convDims(info: backend_util.Conv2DInfo): Int32Array {
  return Int32Array.of(
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.outHeight,
    info.outWidth,
    info.outChannels,
    info.filterHeight,
    info.filterWidth,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
  );
}

/** TF.js's Conv2DInfo for NHWC (the webgpu kernels use it too). */
export function convInfo(
  xShape: number[],
  filterShape: number[],
  attrs: {
    strides: [number, number] | number;
    pad: ConvPad;
    dilations?: [number, number] | number;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  },
): backend_util.Conv2DInfo {
  return backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

interface PoolAttrs {
  filterSize: [number, number] | number;
  strides: [number, number] | number;
  pad: ConvPad;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

interface ConvAttrs {
  strides: [number, number] | number;
  pad: ConvPad;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** NHWC with dilation 1 runs natively; anything else goes to `fallback` (the wasm kernel). */
function nativeOnly(attrs: ConvAttrs, info: backend_util.Conv2DInfo): boolean {
  return attrs.dataFormat !== 'NCHW' && info.dilationHeight === 1 && info.dilationWidth === 1;
}

/** The kernels that replace the wasm backend's, given the addon and the wasm kernels to fall back on. */
export function nativeWasmKernels(
  k: NativeKernels,
  fallback: {
    conv2D: KernelFunc;
    conv2DBackpropFilter: KernelFunc;
    conv2DBackpropInput: KernelFunc;
    maxPoolGrad: KernelFunc | undefined;
  },
): KernelConfig[] {
  const conv2D: KernelFunc = (args) => {
    const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
    const attrs = args.attrs as unknown as ConvAttrs;
    const info = convInfo(x.shape, filter.shape, attrs);
    if (!nativeOnly(attrs, info)) return fallback.conv2D(args);
    const b = args.backend as WasmBackend;
    const out = b.makeOutput([info.batchSize, info.outHeight, info.outWidth, info.outChannels], 'float32');
    k.conv2dForward(b.typedArrayFromHeap(x), b.typedArrayFromHeap(filter), b.typedArrayFromHeap(out), convDims(info));
    return out;
  };
  const conv2DBackpropFilter: KernelFunc = (args) => {
    const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
    const attrs = args.attrs as unknown as ConvAttrs & { filterShape: number[] };
    const info = convInfo(x.shape, attrs.filterShape, attrs);
    if (!nativeOnly(attrs, info)) return fallback.conv2DBackpropFilter(args);
    const b = args.backend as WasmBackend;
    const out = b.makeOutput([...attrs.filterShape], 'float32');
    k.conv2dBackpropFilter(
      b.typedArrayFromHeap(x),
      b.typedArrayFromHeap(dy),
      b.typedArrayFromHeap(out),
      convDims(info),
    );
    return out;
  };
  const conv2DBackpropInput: KernelFunc = (args) => {
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    const attrs = args.attrs as unknown as ConvAttrs & { inputShape: number[] };
    const info = convInfo(attrs.inputShape, filter.shape, attrs);
    if (!nativeOnly(attrs, info)) return fallback.conv2DBackpropInput(args);
    const b = args.backend as WasmBackend;
    const out = b.makeOutput([...attrs.inputShape], 'float32');
    k.conv2dBackpropInput(
      b.typedArrayFromHeap(dy),
      b.typedArrayFromHeap(filter),
      b.typedArrayFromHeap(out),
      convDims(info),
    );
    return out;
  };
  const bnTrain: KernelFunc = ({ inputs, backend, attrs }) => {
    const { x, gamma, beta } = inputs as { x: TensorInfo; gamma: TensorInfo; beta: TensorInfo };
    const c = x.shape[x.shape.length - 1]!;
    const b = backend as WasmBackend;
    const outs = [b.makeOutput([...x.shape], 'float32'), ...[0, 1, 2].map(() => b.makeOutput([c], 'float32'))];
    const [y, mean, invStd, variance] = outs as [TensorInfo, TensorInfo, TensorInfo, TensorInfo];
    const h = (t: TensorInfo) => b.typedArrayFromHeap(t);
    k.batchNormTrain(h(x), h(gamma), h(beta), h(y), h(mean), h(invStd), h(variance), Boolean(attrs?.['relu']));
    return outs;
  };
  const bnTrainGrad: KernelFunc = ({ inputs, backend, attrs }) => {
    const { dy, x, y, mean, invStd, gamma } = inputs as Record<string, TensorInfo>;
    const c = x!.shape[x!.shape.length - 1]!;
    const b = backend as WasmBackend;
    const outs = [b.makeOutput([...x!.shape], 'float32'), b.makeOutput([c], 'float32'), b.makeOutput([c], 'float32')];
    const [dx, dgamma, dbeta] = outs as [TensorInfo, TensorInfo, TensorInfo];
    const h = (t: TensorInfo) => b.typedArrayFromHeap(t);
    k.batchNormTrainGrad(
      h(dy!),
      h(x!),
      h(y!),
      h(mean!),
      h(invStd!),
      h(gamma!),
      h(dx),
      h(dgamma),
      h(dbeta),
      Boolean(attrs?.['relu']),
    );
    return outs;
  };
  const convBiasAct: KernelFunc = (args) => {
    const { x, filter, bias, residual } = args.inputs as Record<string, TensorInfo | undefined>;
    const attrs = args.attrs as unknown as ConvAttrs & { relu: boolean; weightKey?: number };
    const info = convInfo(x!.shape, filter!.shape, attrs);
    const b = args.backend as WasmBackend;
    const out = b.makeOutput([info.batchSize, info.outHeight, info.outWidth, info.outChannels], 'float32');
    const h = (t: TensorInfo) => b.typedArrayFromHeap(t);
    k.conv2dBiasAct(
      h(x!),
      h(filter!),
      h(bias!),
      residual ? h(residual) : null,
      h(out),
      convDims(info),
      Boolean(attrs.relu),
    );
    return out;
  };
  const maxPoolGrad: KernelFunc = (args) => {
    const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
    const attrs = args.attrs as unknown as PoolAttrs;
    const info = backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      attrs.filterSize,
      attrs.strides,
      1,
      attrs.pad,
      attrs.dimRoundingMode,
    );
    if (info.dilationHeight !== 1 || info.dilationWidth !== 1) {
      if (!fallback.maxPoolGrad) throw new Error('MaxPoolGrad with dilation is not supported on wasm');
      return fallback.maxPoolGrad(args);
    }
    const b = args.backend as WasmBackend;
    const out = b.makeOutput([...input.shape], 'float32');
    const dims = convDims({ ...info, outChannels: info.inChannels } as backend_util.Conv2DInfo);
    k.maxPoolGrad(b.typedArrayFromHeap(dy), b.typedArrayFromHeap(input), b.typedArrayFromHeap(out), dims);
    return out;
  };
  const sgdStep: KernelFunc = ({ inputs, backend, attrs }) => {
    const { p, buf, g } = inputs as Record<string, TensorInfo>;
    const a = attrs as unknown as { lr: number; momentum: number; weightDecay: number; nesterov: boolean };
    const b = backend as WasmBackend;
    const outs = [b.makeOutput([...p!.shape], 'float32'), b.makeOutput([...p!.shape], 'float32')];
    const h = (t: TensorInfo) => b.typedArrayFromHeap(t);
    const params = Float32Array.of(a.lr, a.momentum, a.weightDecay, a.nesterov ? 1 : 0);
    k.sgdStep(h(p!), h(buf!), h(g!), h(outs[0]!), h(outs[1]!), params);
    return outs;
  };
  const wasm = (kernelName: string, kernelFunc: KernelFunc): KernelConfig => ({
    kernelName,
    backendName: 'wasm',
    kernelFunc,
  });
  return [
    wasm('Conv2D', conv2D),
    wasm('Conv2DBackpropFilter', conv2DBackpropFilter),
    wasm('Conv2DBackpropInput', conv2DBackpropInput),
    wasm(BN_TRAIN_KERNEL, bnTrain),
    wasm(BN_TRAIN_GRAD_KERNEL, bnTrainGrad),
    wasm('MaxPoolGrad', maxPoolGrad),
    wasm(CONV_BIAS_ACT_KERNEL, convBiasAct),
    wasm(SGD_STEP_KERNEL, sgdStep),
  ];
}
