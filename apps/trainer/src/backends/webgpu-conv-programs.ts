/**
 * WGSL programs for the webgpu backend's convolution gradients (webgpu-kernels.ts registers them), as
 * `DirectProgram`s (webgpu-direct.ts; see webgpu-programs.ts for what it adds to each shader). Both are tiled implicit GEMMs: 64×64
 * output tiles, 16-deep k slices staged in workgroup memory as vec4 columns, 4×4 results per thread, operands
 * gathered from the NHWC tensors on the fly (no im2col buffer).
 *
 * - ConvFilterGradProgram: dW[m, co] = Σ_k A[m, k] · dy[k, co] with m = (kh, kw, ci) and k = (n, oh, ow), plus
 *   split-K (each workgroup sums one range of k into its own slice of a [splits, M, N] output, SplitSumProgram adds
 *   the slices) so that the 7×7 stem, whose output is only 147×64 but whose k runs over every output pixel of the
 *   batch, still fills the GPU. TF.js's own kernel gives one thread per filter element a loop over all of k: 391 of
 *   460 ms of GPU time of a 224 px step on an H200.
 * - ConvInputGradProgram: dx[r, ci] = Σ_k dy'[r, k] · W[k, ci] with r = (n, ih, iw) and k = (kh, kw, co), where
 *   dy'[r, k] = dy[n, oh, ow, co] when ih + pad - kh = oh · stride (and likewise for w), else 0; the rows are split
 *   by their phase modulo the stride, so that each reduces over the taps of its phase only.
 */
import type { DirectProgram, UniformType } from './webgpu-direct';
import { elementwise } from './webgpu-programs';

const ints = (names: string): (readonly [string, UniformType])[] =>
  names.split(',').map((n) => [n.trim(), 'i32'] as const);

const TILE = 64;
const TILE_K = 16;

/**
 * The shared middle and end of both GEMMs: the 16-deep product of the staged tiles into this thread's 4×4 results
 * (acc0..acc3 are its rows, As/Bs hold the tiles as vec4 columns), and the store of those results at result[base +
 * row · N + col], bounded by uniforms.M and uniforms.N (storeTile's `value`: the result rows[i][j] itself, or an
 * epilogue of it, which may use row and c0 + j).
 */
const TILE_PRODUCT = `for (var j = 0; j < ${TILE_K}; j++) {
            let av = As[j * ${TILE / 4} + ty];
            let bv = Bs[j * ${TILE / 4} + tx];
            acc0 = fma(vec4<f32>(av.x), bv, acc0);
            acc1 = fma(vec4<f32>(av.y), bv, acc1);
            acc2 = fma(vec4<f32>(av.z), bv, acc2);
            acc3 = fma(vec4<f32>(av.w), bv, acc3);
          }`;

/** The uniforms of both split-K GEMMs (the filter gradient and the forward convolution): convFilterGradUniforms. */
const SPLIT_GEMM_UNIFORMS = ints(
  'M, N, K, kPerSplit, kTiles, inH, inW, cin, fw, outW, outHW, strideH, strideW, padT, padL',
);

/**
 * The start of both split-K GEMMs: the staged tiles, this thread's place in its 64×64 output tile, and the range of
 * k its split (workgroup z) sums.
 */
const SPLIT_GEMM_HEAD = `
      var<workgroup> As : array<vec4<f32>, ${(TILE_K * TILE) / 4}>;
      var<workgroup> Bs : array<vec4<f32>, ${(TILE_K * TILE) / 4}>;

      fn main() {
        let li = i32(localIndex);
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let col0 = i32(workgroupId.x) * ${TILE};
        let row0 = i32(workgroupId.y) * ${TILE};
        let split = i32(workgroupId.z);
        let kBegin = split * uniforms.kPerSplit;
        let kEnd = min(kBegin + uniforms.kPerSplit, uniforms.K);`;

function storeTile(base: string, value = 'rows[i][j]'): string {
  return `let base = ${base};
        let c0 = col0 + tx * 4;
        var rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
        for (var i = 0; i < 4; i++) {
          let row = row0 + ty * 4 + i;
          if (row < uniforms.M) {
            for (var j = 0; j < 4; j++) {
              if (c0 + j < uniforms.N) {
                result[base + row * uniforms.N + c0 + j] = ${value};
              }
            }
          }
        }`;
}

export interface ConvGemmGeometry {
  /** Rows of dW: filterHeight × filterWidth × inChannels. */
  m: number;
  /** Columns of dW: outChannels. */
  n: number;
  /** The reduction: batch × outHeight × outWidth. */
  k: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  filterWidth: number;
  outHeight: number;
  outWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
}

/** Splits of k so that about `target` workgroups run, each summing at least 8 k-slices. */
export function filterGradSplits(
  g: Pick<ConvGemmGeometry, 'm' | 'n' | 'k'>,
  target = 1024,
): { splits: number; kPerSplit: number } {
  const tiles = Math.ceil(g.m / TILE) * Math.ceil(g.n / TILE);
  const kSlices = Math.ceil(g.k / TILE_K);
  const splits = Math.max(1, Math.min(Math.ceil(target / tiles), Math.floor(kSlices / 8), 65535));
  const kPerSplit = Math.ceil(kSlices / splits) * TILE_K;
  return { splits: Math.ceil(g.k / kPerSplit), kPerSplit };
}

/**
 * dW (or its split-K slices, [splits, M, N]) from inputs x, dy; uniforms: convFilterGradUniforms.
 */
export function convFilterGrad(geometry: ConvGemmGeometry, splits: number): DirectProgram {
  return {
    key: 'gpulabConvFilterGrad',
    inputs: ['x', 'dy'],
    outputs: ['result'],
    uniforms: SPLIT_GEMM_UNIFORMS,
    workgroupSize: [16, 16, 1],
    workgroups: [Math.ceil(geometry.n / TILE), Math.ceil(geometry.m / TILE), splits],
    flat: false,
    code: convFilterGradCode,
  };
}

export function convFilterGradUniforms(g: ConvGemmGeometry, kPerSplit: number): number[] {
  return [
    g.m,
    g.n,
    g.k,
    kPerSplit,
    kPerSplit / TILE_K,
    g.inHeight,
    g.inWidth,
    g.inChannels,
    g.filterWidth,
    g.outWidth,
    g.outHeight * g.outWidth,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padLeft,
  ];
}

function convFilterGradCode(): string {
  // As/Bs hold a 16-deep slice of the A (m) and B (co) tiles as vec4 columns: [kk][64 / 4].
  return `${SPLIT_GEMM_HEAD}

        // This thread loads column 'lane' of both tiles, at k-slice rows lane / 64 + 4 i.
        let lane = li % ${TILE};
        let m = row0 + lane;
        let ci = m % uniforms.cin;
        let khw = m / uniforms.cin;
        let kw = khw % uniforms.fw;
        let kh = khw / uniforms.fw;
        let co = col0 + lane;
        let kk0 = li / ${TILE};

        var acc0 = vec4<f32>(0.0);
        var acc1 = vec4<f32>(0.0);
        var acc2 = vec4<f32>(0.0);
        var acc3 = vec4<f32>(0.0);
        for (var t = 0; t < uniforms.kTiles; t++) {
          let k0 = kBegin + t * ${TILE_K};
          for (var i = 0; i < 4; i++) {
            let kk = kk0 + 4 * i;
            let k = k0 + kk;
            var a = 0.0;
            var b = 0.0;
            if (k < kEnd) {
              if (m < uniforms.M) {
                let nb = k / uniforms.outHW;
                let r = k - nb * uniforms.outHW;
                let oh = r / uniforms.outW;
                let ow = r - oh * uniforms.outW;
                let ih = oh * uniforms.strideH + kh - uniforms.padT;
                let iw = ow * uniforms.strideW + kw - uniforms.padL;
                if (ih >= 0 && ih < uniforms.inH && iw >= 0 && iw < uniforms.inW) {
                  a = x[((nb * uniforms.inH + ih) * uniforms.inW + iw) * uniforms.cin + ci];
                }
              }
              if (co < uniforms.N) {
                b = dy[k * uniforms.N + co];
              }
            }
            As[kk * ${TILE / 4} + lane / 4][lane % 4] = a;
            Bs[kk * ${TILE / 4} + lane / 4][lane % 4] = b;
          }
          workgroupBarrier();
          ${TILE_PRODUCT}
          workgroupBarrier();
        }

        ${storeTile('split * uniforms.M * uniforms.N')}
      }
    `;
}

/** Sums a [splits, size] tensor over its first axis into [size] (uniforms splits, size). */
export function splitSum(size: number): DirectProgram {
  return elementwise({
    key: 'gpulabSplitSum',
    size,
    threads: 128,
    inputs: ['parts'],
    outputs: ['result'],
    uniforms: ints('splits'),
    body: `var s = 0.0;
          for (var z = 0; z < uniforms.splits; z++) {
            s += parts[z * uniforms.size + index];
          }
          result[index] = s;`,
  });
}

export interface ConvInputGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  filterHeight: number;
  filterWidth: number;
  outHeight: number;
  outWidth: number;
  outChannels: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
}

/**
 * dx [batch, inHeight, inWidth, inChannels] from inputs dy, W; uniforms: convInputGradUniforms. With stride s, an
 * input row (ih + padT) only meets the filter rows kh ≡ ih + padT (mod s): the rows of dx are split by that phase
 * (and the column's), one slice of workgroups per phase (z), each reducing over its own taps only — a 3×3 stride-2
 * layer's phases have 4, 2, 2 and 1 of the 9 taps, where gathering all 9 would multiply 5 zeros out of 9.
 */
export function convInputGrad(g: ConvInputGeometry): DirectProgram {
  const rowsPerPhase = g.batch * Math.ceil(g.inHeight / g.strideHeight) * Math.ceil(g.inWidth / g.strideWidth);
  return {
    key: 'gpulabConvInputGrad',
    inputs: ['dy', 'W'],
    outputs: ['result'],
    uniforms: ints('N, batch, inH, inW, fh, fw, outH, outW, cout, strideH, strideW, padT, padL'),
    workgroupSize: [16, 16, 1],
    workgroups: [Math.ceil(g.inChannels / TILE), Math.ceil(rowsPerPhase / TILE), g.strideHeight * g.strideWidth],
    flat: false,
    code: convInputGradCode,
  };
}

export function convInputGradUniforms(g: ConvInputGeometry): number[] {
  return [
    g.inChannels,
    g.batch,
    g.inHeight,
    g.inWidth,
    g.filterHeight,
    g.filterWidth,
    g.outHeight,
    g.outWidth,
    g.outChannels,
    g.strideHeight,
    g.strideWidth,
    g.padTop,
    g.padLeft,
  ];
}

function convInputGradCode(): string {
  return `
      var<workgroup> As : array<vec4<f32>, ${(TILE_K * TILE) / 4}>;
      var<workgroup> Bs : array<vec4<f32>, ${(TILE_K * TILE) / 4}>;
      var<workgroup> kTilesShared : i32;

      fn main() {
        let li = i32(localIndex);
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let col0 = i32(workgroupId.x) * ${TILE};
        let row0 = i32(workgroupId.y) * ${TILE};

        // This workgroup's phase: the rows ih + padT ≡ ph (mod strideH), iw + padL ≡ pw (mod strideW), i.e.
        // ih = ih0 + a · strideH, iw = iw0 + b · strideW; their taps kh = ph + j · strideH, kw = pw + l · strideW
        // meet dy at oh = a + offH - j, ow = b + offW - l.
        let ph = i32(workgroupId.z) / uniforms.strideW;
        let pw = i32(workgroupId.z) % uniforms.strideW;
        let ih0 = ((ph - uniforms.padT) % uniforms.strideH + uniforms.strideH) % uniforms.strideH;
        let iw0 = ((pw - uniforms.padL) % uniforms.strideW + uniforms.strideW) % uniforms.strideW;
        let cntH = max(0, (uniforms.inH - ih0 + uniforms.strideH - 1) / uniforms.strideH);
        let cntW = max(0, (uniforms.inW - iw0 + uniforms.strideW - 1) / uniforms.strideW);
        let M = uniforms.batch * cntH * cntW;
        let offH = (ih0 + uniforms.padT - ph) / uniforms.strideH;
        let offW = (iw0 + uniforms.padL - pw) / uniforms.strideW;
        let nKh = max(0, (uniforms.fh - ph + uniforms.strideH - 1) / uniforms.strideH);
        let nKw = max(0, (uniforms.fw - pw + uniforms.strideW - 1) / uniforms.strideW);
        let K = nKh * nKw * uniforms.cout;
        // The loop's bound through workgroup memory: the compiler cannot tell that a value of workgroupId is the same
        // in every invocation (the preamble keeps it in a private variable), and the loop holds barriers. None for a
        // workgroup past its phase's rows.
        if (li == 0) {
          kTilesShared = select((K + ${TILE_K - 1}) / ${TILE_K}, 0, row0 >= M);
        }
        let kTiles = workgroupUniformLoad(&kTilesShared);

        // This thread loads k-slice row kk of both tiles, for tile columns lane + 16 i: consecutive threads read
        // consecutive output channels of dy and of W. Its four rows' (n, a + offH, b + offW) are fixed.
        let kk = li % ${TILE_K};
        let lane = li / ${TILE_K};
        var rowN : array<i32, 4>;
        var rowH : array<i32, 4>;
        var rowW : array<i32, 4>;
        for (var i = 0; i < 4; i++) {
          let r = row0 + lane + 16 * i;
          let b = r % cntW;
          let t = r / cntW;
          rowW[i] = b + offW;
          rowH[i] = t % cntH + offH;
          rowN[i] = t / cntH;
        }

        var acc0 = vec4<f32>(0.0);
        var acc1 = vec4<f32>(0.0);
        var acc2 = vec4<f32>(0.0);
        var acc3 = vec4<f32>(0.0);
        for (var t = 0; t < kTiles; t++) {
          let k = t * ${TILE_K} + kk;
          let co = k % uniforms.cout;
          let jl = k / uniforms.cout;
          let l = jl % max(nKw, 1);
          let j = jl / max(nKw, 1);
          let kh = ph + j * uniforms.strideH;
          let kw = pw + l * uniforms.strideW;
          for (var i = 0; i < 4; i++) {
            let rr = lane + 16 * i;
            var a = 0.0;
            var b = 0.0;
            if (k < K) {
              let oh = rowH[i] - j;
              let ow = rowW[i] - l;
              if (row0 + rr < M && oh >= 0 && ow >= 0 && oh < uniforms.outH && ow < uniforms.outW) {
                a = dy[((rowN[i] * uniforms.outH + oh) * uniforms.outW + ow) * uniforms.cout + co];
              }
              let ci = col0 + rr;
              if (ci < uniforms.N) {
                b = W[((kh * uniforms.fw + kw) * uniforms.N + ci) * uniforms.cout + co];
              }
            }
            As[kk * ${TILE / 4} + rr / 4][rr % 4] = a;
            Bs[kk * ${TILE / 4} + rr / 4][rr % 4] = b;
          }
          workgroupBarrier();
          ${TILE_PRODUCT}
          workgroupBarrier();
        }

        // rows of this phase back to their (n, ih, iw) in dx
        let c0 = col0 + tx * 4;
        var rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
        for (var i = 0; i < 4; i++) {
          let row = row0 + ty * 4 + i;
          if (row < M) {
            let b = row % cntW;
            let t = row / cntW;
            let ih = ih0 + (t % cntH) * uniforms.strideH;
            let iw = iw0 + b * uniforms.strideW;
            let base = ((t / cntH * uniforms.inH + ih) * uniforms.inW + iw) * uniforms.N;
            for (var j = 0; j < 4; j++) {
              if (c0 + j < uniforms.N) {
                result[base + c0 + j] = rows[i][j];
              }
            }
          }
        }
      }
    `;
}

export interface ConvForwardGeometry extends ConvInputGeometry {
  /** What the store adds: bias per output channel, a residual of the output's shape, then ReLU. */
  bias: boolean;
  residual: boolean;
  relu: boolean;
}

/**
 * The split-K of convForward for `g`: an output with too few 64×64 tiles to fill a large GPU (ResNet18's layer3 and
 * layer4 at 224 px, batch 32: 392 and 200) has its reduction split over workgroups; TF.js's FusedConv2D has no
 * split. `target` as filterGradSplits'.
 */
export function convForwardSplits(g: ConvInputGeometry, target = 1024): { splits: number; kPerSplit: number } {
  const m = g.batch * g.outHeight * g.outWidth;
  return filterGradSplits({ m, n: g.outChannels, k: g.filterHeight * g.filterWidth * g.inChannels }, target);
}

/**
 * y [batch, outHeight, outWidth, outChannels] = conv(x, W) (+ bias, + residual, ReLU) as a tiled implicit GEMM:
 * y[r, co] = Σ_k A[r, k] · W[k, co] with r = (n, oh, ow), k = (kh, kw, ci), A gathered from x. With `splits` > 1
 * each workgroup sums one range of k into its own slice of a [splits, M, N] output (no epilogue), which
 * convForwardEpilogue then sums and finishes. Inputs x, W, then bias and residual when the geometry has them.
 */
export function convForward(g: ConvForwardGeometry, splits: number): DirectProgram {
  const m = g.batch * g.outHeight * g.outWidth;
  const split = splits > 1;
  const bias = g.bias && !split;
  const residual = g.residual && !split;
  const relu = g.relu && !split;
  return {
    key: `gpulabConvForward_${split ? 'split' : `${bias}_${residual}_${relu}`}`,
    inputs: ['x', 'W', ...(bias ? ['bias'] : []), ...(residual ? ['res'] : [])],
    outputs: ['result'],
    uniforms: SPLIT_GEMM_UNIFORMS,
    workgroupSize: [16, 16, 1],
    workgroups: [Math.ceil(g.outChannels / TILE), Math.ceil(m / TILE), splits],
    flat: false,
    code: () => convForwardCode(bias, residual, relu),
  };
}

/** The split-K GEMMs share their uniforms' layout (SPLIT_GEMM_UNIFORMS): here M = output pixels, N = out channels. */
export function convForwardUniforms(g: ConvInputGeometry, kPerSplit: number): number[] {
  const m = g.batch * g.outHeight * g.outWidth;
  return convFilterGradUniforms(
    { ...g, m, n: g.outChannels, k: g.filterHeight * g.filterWidth * g.inChannels },
    kPerSplit,
  );
}

function convForwardCode(bias: boolean, residual: boolean, relu: boolean): string {
  let value = 'rows[i][j]';
  if (bias) value = `(${value} + bias[c0 + j])`;
  if (residual) value = `(${value} + res[row * uniforms.N + c0 + j])`;
  if (relu) value = `max(${value}, 0.0)`;
  return `${SPLIT_GEMM_HEAD}

        // A: this thread loads k-slice row ka of tile rows laneA + 16 i (consecutive threads: consecutive input
        // channels of one pixel); its four rows' (n, oh · strideH - padT, ow · strideW - padL) are fixed.
        let ka = li % ${TILE_K};
        let laneA = li / ${TILE_K};
        var rowN : array<i32, 4>;
        var rowH : array<i32, 4>;
        var rowW : array<i32, 4>;
        for (var i = 0; i < 4; i++) {
          let r = row0 + laneA + 16 * i;
          let nb = r / uniforms.outHW;
          let p = r - nb * uniforms.outHW;
          let oh = p / uniforms.outW;
          rowN[i] = nb;
          rowH[i] = oh * uniforms.strideH - uniforms.padT;
          rowW[i] = (p - oh * uniforms.outW) * uniforms.strideW - uniforms.padL;
        }
        // B: tile column laneB (consecutive threads: consecutive output channels), k-slice rows kb0 + 4 i.
        let laneB = li % ${TILE};
        let kb0 = li / ${TILE};
        let co = col0 + laneB;

        var acc0 = vec4<f32>(0.0);
        var acc1 = vec4<f32>(0.0);
        var acc2 = vec4<f32>(0.0);
        var acc3 = vec4<f32>(0.0);
        for (var t = 0; t < uniforms.kTiles; t++) {
          let k0 = kBegin + t * ${TILE_K};
          let k = k0 + ka;
          let ci = k % uniforms.cin;
          let khw = k / uniforms.cin;
          let kw = khw % uniforms.fw;
          let kh = khw / uniforms.fw;
          for (var i = 0; i < 4; i++) {
            let rr = laneA + 16 * i;
            var a = 0.0;
            if (k < kEnd && row0 + rr < uniforms.M) {
              let ih = rowH[i] + kh;
              let iw = rowW[i] + kw;
              if (ih >= 0 && ih < uniforms.inH && iw >= 0 && iw < uniforms.inW) {
                a = x[((rowN[i] * uniforms.inH + ih) * uniforms.inW + iw) * uniforms.cin + ci];
              }
            }
            As[ka * ${TILE / 4} + rr / 4][rr % 4] = a;
            let kb = kb0 + 4 * i;
            var b = 0.0;
            if (k0 + kb < kEnd && co < uniforms.N) {
              b = W[(k0 + kb) * uniforms.N + co];
            }
            Bs[kb * ${TILE / 4} + laneB / 4][laneB % 4] = b;
          }
          workgroupBarrier();
          ${TILE_PRODUCT}
          workgroupBarrier();
        }

        ${storeTile('split * uniforms.M * uniforms.N', value)}
      }
    `;
}

/** Sums convForward's [splits, M, N] slices, + bias per channel (+ residual), ReLU (uniforms splits, channels). */
export function convForwardEpilogue(size: number, bias: boolean, residual: boolean, relu: boolean): DirectProgram {
  let value = 's';
  if (bias) value = `${value} + bias[index % uniforms.channels]`;
  if (residual) value = `${value} + res[index]`;
  if (relu) value = `max(${value}, 0.0)`;
  return elementwise({
    key: `gpulabConvEpilogue_${bias}_${residual}_${relu}`,
    size,
    threads: 128,
    inputs: ['parts', ...(bias ? ['bias'] : []), ...(residual ? ['res'] : [])],
    outputs: ['result'],
    uniforms: ints('splits, channels'),
    body: `var s = 0.0;
          for (var z = 0; z < uniforms.splits; z++) {
            s += parts[z * uniforms.size + index];
          }
          result[index] = ${value};`,
  });
}
