/**
 * Convolution kernels for training on the wasm backend.
 *
 * tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter kernel (training a conv net throws), its Conv2DBackpropInput
 * is a direct loop 10-20x slower than the forward convolution, and its XNNPACK Conv2D repacks the whole filter
 * whenever the filter tensor is new — every training step. These kernels are composed from the backend's own fast
 * kernels (XNNPACK convolution and matmul) plus heap-level im2col/col2im (im2col.ts), all in wasm memory:
 *
 * - Conv2DBackpropFilter: dW [KH·KW·Ci, Co] = colsᵀ [KH·KW·Ci, M] · dy [M, Co] with M = N·OH·OW (one matmul; one per
 *   filter tap when colsᵀ would exceed singleMatmulBudget). The filter-sized result is written once.
 * - Conv2DBackpropInput: with few output positions, or for strided convolutions, dcolsᵀ = W · dyᵀ (the filter is
 *   streamed, not repacked) and col2im; otherwise a stride-1 XNNPACK convolution of dy (dilated by the stride) with
 *   the spatially flipped, in/out-swapped filter, padded by K−1−pad.
 * - Conv2D: XNNPACK's kernel, except with few output positions next to output channels (deep layers, small images):
 *   y = (Wᵀ · colsᵀ)ᵀ, which costs a filter transpose instead of a filter repack.
 * Each kernel is checked against the cpu backend's on every path (test/unit/wasm-kernels.test.ts).
 * Only NHWC and dilation 1 take the new paths (what ResNet uses); other convolutions use XNNPACK or throw clearly.
 */
import {
  backend_util,
  getKernel,
  type KernelConfig,
  type KernelFunc,
  registerKernel,
  type TensorInfo,
  unregisterKernel,
} from '@tensorflow/tfjs-core';
import { addTapT, im2colT, tapT } from './im2col';
import {
  BN_TRAIN_GRAD_KERNEL,
  BN_TRAIN_KERNEL,
  CONV_BIAS_ACT_KERNEL,
  type NativeKernels,
  nativeWasmKernels,
  SGD_STEP_KERNEL,
} from './native-kernels';
import { Composer, type WasmBackend } from './wasm-composer';

const BACKEND = 'wasm';

/**
 * Path choices (exported so tests can force each path):
 * - matmulPathFactor: when N·OH·OW (output positions) ≤ factor × output channels, Conv2D and Conv2DBackpropInput
 *   use matrix products that stream the filter instead of an XNNPACK convolution, which repacks the whole filter on
 *   every call with a new filter (every training step). Wins in deep layers and on small images. Strided
 *   Conv2DBackpropInput takes the matmul path whenever its im2col matrix fits singleMatmulBudget.
 * - singleMatmulBudget: Conv2DBackpropFilter builds the whole im2col matrix (one matmul) up to this many elements,
 *   else it does one matmul per filter tap.
 */
export const wasmKernelTuning = { matmulPathFactor: 0.5, singleMatmulBudget: 16 * 1024 * 1024 };

function checkFormat(kernel: string, dataFormat: unknown): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC')
    throw new Error(`${kernel} on wasm supports NHWC only (got ${String(dataFormat)})`);
}

type ConvPad = 'valid' | 'same' | number | backend_util.ExplicitPadding;

interface BackpropFilterAttrs {
  strides: [number, number] | number;
  pad: ConvPad;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
}

export const conv2DBackpropFilter: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as BackpropFilterAttrs;
  checkFormat('Conv2DBackpropFilter', dataFormat);
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const { batchSize: n, inChannels: ci, outChannels: co } = info;
  const { outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw } = info;
  const c = new Composer(backend as WasmBackend);
  try {
    const m = n * oh * ow;
    const dy3 = c.reshape(dy, [1, m, co]);
    if (kh * kw * ci * m <= wasmKernelTuning.singleMatmulBudget) {
      // All taps at once: colsᵀ [KH·KW·Ci, M] · dy [M, Co] is dW already in HWIO order.
      const dw = c.run('BatchMatMul', { a: im2colT(c, x, info), b: dy3 }, { transposeA: false, transposeB: false });
      return c.finish(c.reshape(dw, [kh, kw, ci, co]));
    }
    const parts: TensorInfo[] = [];
    for (let i = 0; i < kh; i++)
      for (let j = 0; j < kw; j++)
        parts.push(
          c.run('BatchMatMul', { a: tapT(c, x, info, i, j), b: dy3 }, { transposeA: false, transposeB: false }),
        );
    const stacked = parts.length === 1 ? parts[0]! : c.run('Concat', parts, { axis: 0 });
    return c.finish(c.reshape(stacked, [kh, kw, ci, co]));
  } catch (e) {
    return c.fail(e);
  }
};

/**
 * [KH, KW, Ci, Co] -> [KH, KW, Co, Ci] rotated by 180° spatially. Rotating both spatial axes reverses the order of
 * the KH·KW taps, so it is done with contiguous slices and one concat (the wasm Reverse kernel is ~10x slower).
 */
function flipFilter(c: Composer, filter: TensorInfo): TensorInfo {
  const [kh, kw, ci, co] = filter.shape as [number, number, number, number];
  const taps = kh * kw;
  const flat = c.reshape(filter, [taps, 1, ci, co]);
  let reversed = flat;
  if (taps > 1) {
    const parts: TensorInfo[] = [];
    for (let t = taps - 1; t >= 0; t--) parts.push(c.slice4(flat, [t, 0, 0, 0], [1, 1, ci, co]));
    reversed = c.run('Concat', parts, { axis: 0 });
  }
  reversed = c.reshape(reversed, [taps, ci, co]);
  return c.reshape(c.run('Transpose', { x: reversed }, { perm: [0, 2, 1] }), [kh, kw, co, ci]);
}

/** dcolsᵀ [K, M] = W [K = KH·KW·Ci, Co] · dyᵀ [Co, M], then col2im (scatter-add of every tap) into dx. */
function backpropInputByMatMul(
  c: Composer,
  dy: TensorInfo,
  filter: TensorInfo,
  info: backend_util.Conv2DInfo,
): TensorInfo {
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outChannels: co, outHeight: oh, outWidth: ow } = info;
  const { filterHeight: kh, filterWidth: kw } = info;
  const m = n * oh * ow;
  const k = kh * kw * ci;
  const dyT = c.reshape(c.transpose2d(dy, m, co), [1, co, m]);
  const colsT = c.run(
    'BatchMatMul',
    { a: c.reshape(filter, [1, k, co]), b: dyT },
    { transposeA: false, transposeB: false },
  );
  const out = c.output([n, h, w, ci]);
  const src = c.heap(colsT);
  const dst = c.heap(out);
  dst.fill(0);
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) addTapT(src, dst, (i * kw + j) * ci * m, info, i, j);
  return out;
}

interface BackpropInputAttrs {
  inputShape: [number, number, number, number];
  strides: [number, number] | number;
  pad: ConvPad;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

export const conv2DBackpropInput: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { inputShape, strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as BackpropInputAttrs;
  checkFormat('Conv2DBackpropInput', dataFormat);
  const info = backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const { batchSize: n, inHeight: h, inWidth: w, outChannels: co, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const c = new Composer(backend as WasmBackend);
  try {
    // The matmul path also replaces strided convolutions' dilated-dy convolution, which wastes (s²−1)/s² of its work.
    const m = n * oh * ow;
    const strided = sh > 1 || sw > 1;
    const fits = kh * kw * info.inChannels * m <= wasmKernelTuning.singleMatmulBudget;
    if (m <= wasmKernelTuning.matmulPathFactor * co || (strided && fits))
      return c.finish(backpropInputByMatMul(c, dy, filter, info));
    const flipped = flipFilter(c, filter);
    let d = dy;
    let lh = oh;
    let lw = ow;
    if (sh > 1 || sw > 1) {
      const spread = c.run(
        'PadV2',
        { x: c.reshape(dy, [n, oh, 1, ow, 1, co]) },
        {
          paddings: [
            [0, 0],
            [0, 0],
            [0, sh - 1],
            [0, 0],
            [0, sw - 1],
            [0, 0],
          ],
          constantValue: 0,
        },
      );
      lh = oh * sh;
      lw = ow * sw;
      d = c.reshape(spread, [n, lh, lw, co]);
    }
    let top = kh - 1 - info.padInfo.top;
    let left = kw - 1 - info.padInfo.left;
    let bottom = h + info.padInfo.top - lh;
    let right = w + info.padInfo.left - lw;
    if (top < 0 || left < 0 || bottom < 0 || right < 0) {
      const t0 = Math.max(0, -top);
      const l0 = Math.max(0, -left);
      const sizeH = lh - t0 - Math.max(0, -bottom);
      const sizeW = lw - l0 - Math.max(0, -right);
      d = c.slice4(d, [0, t0, l0, 0], [n, sizeH, sizeW, co]);
      top = Math.max(0, top);
      left = Math.max(0, left);
      bottom = Math.max(0, bottom);
      right = Math.max(0, right);
    }
    const out = c.run(
      'Conv2D',
      { x: d, filter: flipped },
      {
        strides: 1,
        pad: [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ],
        dataFormat: 'NHWC',
        dilations: 1,
      },
    );
    return c.finish(out);
  } catch (e) {
    return c.fail(e);
  }
};

/** tfjs-backend-wasm's own Conv2D (XNNPACK), captured when ours is registered in its place. */
let xnnpackConv2D: KernelConfig | null = null;

interface Conv2DAttrs {
  strides: [number, number] | number;
  pad: ConvPad;
  dataFormat?: 'NHWC' | 'NCHW';
  dilations?: [number, number] | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * Conv2D: XNNPACK's convolution, except when output positions are few next to output channels (see
 * wasmKernelTuning), where y = (Wᵀ · colsᵀ)ᵀ with the filter transposed on the heap and streamed.
 */
export const conv2D: KernelFunc = (args) => {
  const original = xnnpackConv2D;
  if (!original) throw new Error('wasm Conv2D is not registered');
  const { inputs, backend, attrs } = args;
  const { x, filter } = inputs as { x: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dilations, dimRoundingMode } = attrs as unknown as Conv2DAttrs;
  if (dataFormat === 'NCHW') return original.kernelFunc(args);
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filter.shape as [number, number, number, number],
    strides,
    dilations ?? 1,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
  const {
    batchSize: n,
    outHeight: oh,
    outWidth: ow,
    outChannels: co,
    filterHeight: kh,
    filterWidth: kw,
    inChannels: ci,
  } = info;
  const m = n * oh * ow;
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1 || m > wasmKernelTuning.matmulPathFactor * co)
    return original.kernelFunc(args);
  const c = new Composer(backend as WasmBackend);
  try {
    const k = kh * kw * ci;
    const colsT = im2colT(c, x, info); // [1, K, M]
    const wT = c.reshape(c.transpose2d(filter, k, co), [1, co, k]);
    const yT = c.run('BatchMatMul', { a: wT, b: colsT }, { transposeA: false, transposeB: false }); // [1, Co, M]
    const y = c.transpose2d(yT, co, m);
    return c.finish(c.reshape(y, [n, oh, ow, co]));
  } catch (e) {
    return c.fail(e);
  }
};

/**
 * Identity sharing the input's buffer (reference counted), as the cpu backend does. tfjs-backend-wasm copies it, and
 * the engine clones every tensor it saves for the backward pass: a full copy of each activation, every step.
 * Safe because no kernel writes into an input's buffer.
 */
export const identity: KernelFunc = ({ inputs, backend }) => {
  const { x } = inputs as { x: TensorInfo };
  if (x.dtype === 'string') return wasmIdentity!.kernelFunc({ inputs, backend, attrs: {} });
  (backend as WasmBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
};

/** tfjs-backend-wasm's own kernels that ours replace, captured at registration. */
let wasmIdentity: KernelConfig | null = null;
let wasmMaxPoolGrad: KernelConfig | null = null;

const IDENTITY_KERNEL: KernelConfig = { kernelName: 'Identity', backendName: BACKEND, kernelFunc: identity };

export const WASM_TRAINING_KERNELS: KernelConfig[] = [
  IDENTITY_KERNEL,
  { kernelName: 'Conv2DBackpropFilter', backendName: BACKEND, kernelFunc: conv2DBackpropFilter },
  { kernelName: 'Conv2DBackpropInput', backendName: BACKEND, kernelFunc: conv2DBackpropInput },
];

/** What is registered now: the addon the native kernels came from (null: the wasm kernels), undefined: nothing yet. */
let active: { native: NativeKernels | null; kernels: KernelConfig[] } | undefined;

function replace(k: KernelConfig): void {
  const existing = getKernel(k.kernelName, k.backendName);
  if (existing?.kernelFunc === k.kernelFunc) return;
  if (existing) unregisterKernel(k.kernelName, k.backendName);
  // A replaced kernel keeps the original's setup (the wasm Conv2D binds its wasm function there) and dispose hooks.
  registerKernel(existing ? { ...existing, kernelFunc: k.kernelFunc } : k);
}

/**
 * Registers (or replaces) the training kernels for the wasm backend: with `native`, the addon's convolutions and fused
 * batch norm (native-kernels.ts; the wasm kernels below stay as their fallback for NCHW/dilated convolutions);
 * without, the wasm kernels of this file. Idempotent; switching between the two is allowed (tests compare them).
 */
export function registerWasmTrainingKernels(native: NativeKernels | null = null): void {
  if (active && active.native === native) {
    if (active.kernels.every((k) => getKernel(k.kernelName, BACKEND)?.kernelFunc === k.kernelFunc)) return;
  }
  const ours = new Set<unknown>([conv2D, identity, ...(active?.kernels ?? []).map((k) => k.kernelFunc)]);
  const original = (name: string): KernelConfig | null => {
    const k = getKernel(name, BACKEND);
    return k && !ours.has(k.kernelFunc) ? k : null;
  };
  xnnpackConv2D = original('Conv2D') ?? xnnpackConv2D;
  wasmIdentity = original('Identity') ?? wasmIdentity;
  wasmMaxPoolGrad = original('MaxPoolGrad') ?? wasmMaxPoolGrad;
  const wasmOnly: KernelConfig[] = [
    ...WASM_TRAINING_KERNELS,
    { kernelName: 'Conv2D', backendName: BACKEND, kernelFunc: conv2D },
  ];
  if (wasmMaxPoolGrad) wasmOnly.push(wasmMaxPoolGrad);
  const kernels = native
    ? [
        IDENTITY_KERNEL,
        ...nativeWasmKernels(native, {
          conv2D,
          conv2DBackpropFilter,
          conv2DBackpropInput,
          maxPoolGrad: wasmMaxPoolGrad?.kernelFunc,
        }),
      ]
    : wasmOnly;
  for (const name of [BN_TRAIN_KERNEL, BN_TRAIN_GRAD_KERNEL, SGD_STEP_KERNEL, CONV_BIAS_ACT_KERNEL])
    if (!native && getKernel(name, BACKEND)) unregisterKernel(name, BACKEND);
  for (const k of kernels) replace(k);
  active = { native, kernels };
}

/** True when the native kernels are the ones registered for wasm. */
export function nativeKernelsActive(): boolean {
  return Boolean(active?.native);
}
