/**
 * WGSL programs for the webgpu backend's training kernels (webgpu-kernels.ts registers them). Each is a TF.js
 * `WebGPUProgram`: TF.js writes the shader's preamble (the output buffer `result`, one read-only storage buffer per
 * name in `variableNames`, the `uniforms` struct with every input's shape and the fields in `uniforms`), the user
 * code here defines `main`.
 *
 * - ConvFilterGradProgram: Conv2DBackpropFilter as a tiled GEMM, dW[m, co] = Σ_k A[m, k] · dy[k, co] with
 *   m = (kh, kw, ci) and k = (n, oh, ow), A gathered from x on the fly (implicit im2col). 64×64 output tiles, 16-deep
 *   k slices in workgroup memory, 4×4 results per thread, and split-K (each workgroup sums one range of k into its own
 *   slice of a [splits, M, N] output, SplitSumProgram adds the slices) so that the 7×7 stem, whose output is only
 *   147×64 but whose k runs over every output pixel of the batch, still fills the GPU. TF.js's own kernel gives one
 *   thread per filter element a loop over all of k: 391 of 460 ms of GPU time of a 224 px step on an H200.
 * - Batch norm in train mode (+ ReLU): per-channel partial sums over row chunks (BnReduceProgram), one thread per
 *   channel to finish them (BnFinalizeProgram), one elementwise pass (BnNormalizeProgram / BnDxProgram): five
 *   dispatches each way instead of ~14 forward and ~12 backward composed ops.
 * - SGD with momentum: two elementwise passes (new buffer, new parameter) instead of five or six ops and a scalar
 *   upload per parameter.
 */
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

const TILE = 64;
const TILE_K = 16;

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
export function filterGradSplits(g: ConvGemmGeometry, target = 1024): { splits: number; kPerSplit: number } {
  const tiles = Math.ceil(g.m / TILE) * Math.ceil(g.n / TILE);
  const kSlices = Math.ceil(g.k / TILE_K);
  const splits = Math.max(1, Math.min(Math.ceil(target / tiles), Math.floor(kSlices / 8), 65535));
  const kPerSplit = Math.ceil(kSlices / splits) * TILE_K;
  return { splits: Math.ceil(g.k / kPerSplit), kPerSplit };
}

export class ConvFilterGradProgram implements WebGPUProgram {
  variableNames = ['x', 'dy'];
  uniforms =
    'M : i32, N : i32, K : i32, kPerSplit : i32, kTiles : i32, inH : i32, inW : i32, cin : i32, fw : i32, ' +
    'outW : i32, outHW : i32, strideH : i32, strideW : i32, padT : i32, padL : i32,';
  workgroupSize: [number, number, number] = [16, 16, 1];
  dispatchLayout = { x: [2], y: [1], z: [0] };
  dispatch: [number, number, number];
  outputShape: number[];
  shaderKey = 'gpulabConvFilterGrad';

  /** `outputShape`: the filter's shape when there is one split (written in place), else [splits, M, N]. */
  constructor(
    readonly geometry: ConvGemmGeometry,
    readonly splits: number,
    readonly kPerSplit: number,
    outputShape: number[],
  ) {
    this.outputShape = outputShape;
    this.dispatch = [Math.ceil(geometry.n / TILE), Math.ceil(geometry.m / TILE), splits];
  }

  uniformData(): { type: string; data: number[] }[] {
    const g = this.geometry;
    return [
      g.m,
      g.n,
      g.k,
      this.kPerSplit,
      this.kPerSplit / TILE_K,
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
    ].map((v) => ({ type: 'int32', data: [v] }));
  }

  getUserCode(): string {
    // As/Bs hold a 16-deep slice of the A (m) and B (co) tiles as vec4 columns: [kk][64 / 4].
    return `
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
        let kEnd = min(kBegin + uniforms.kPerSplit, uniforms.K);

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
          for (var kk = 0; kk < ${TILE_K}; kk++) {
            let a = As[kk * ${TILE / 4} + ty];
            let b = Bs[kk * ${TILE / 4} + tx];
            acc0 = fma(vec4<f32>(a.x), b, acc0);
            acc1 = fma(vec4<f32>(a.y), b, acc1);
            acc2 = fma(vec4<f32>(a.z), b, acc2);
            acc3 = fma(vec4<f32>(a.w), b, acc3);
          }
          workgroupBarrier();
        }

        let base = split * uniforms.M * uniforms.N;
        let c0 = col0 + tx * 4;
        var rows = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
        for (var i = 0; i < 4; i++) {
          let row = row0 + ty * 4 + i;
          if (row < uniforms.M) {
            for (var j = 0; j < 4; j++) {
              if (c0 + j < uniforms.N) {
                result[base + row * uniforms.N + c0 + j] = rows[i][j];
              }
            }
          }
        }
      }
    `;
  }
}

/** A flat dispatch over every element of `shape`, `threads` per workgroup (one element each). */
function flat(shape: number[], threads: number) {
  const size = shape.reduce((a, b) => a * b, 1);
  return {
    outputShape: shape,
    dispatchLayout: { x: shape.map((_, i) => i) },
    dispatch: [Math.ceil(size / threads), 1, 1] as [number, number, number],
  };
}

/** Sums a [splits, ...shape] tensor over its first axis into `shape`. */
export class SplitSumProgram implements WebGPUProgram {
  variableNames = ['parts'];
  uniforms = 'splits : i32,';
  size = true;
  workgroupSize: [number, number, number] = [128, 1, 1];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  outputShape: number[];
  shaderKey = 'gpulabSplitSum';

  constructor(shape: number[]) {
    ({
      outputShape: this.outputShape,
      dispatchLayout: this.dispatchLayout,
      dispatch: this.dispatch,
    } = flat(shape, 128));
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          var s = 0.0;
          for (var z = 0; z < uniforms.splits; z++) {
            s += parts[z * uniforms.size + index];
          }
          result[index] = s;
        }
      }
    `;
  }
}

/** Row chunks of the per-channel reductions: about 1,024 workgroups, at least 16 rows each. */
export function bnChunks(rows: number, channels: number): { chunks: number; rowsPerChunk: number } {
  const blocks = Math.ceil(channels / 64);
  const chunks = Math.max(1, Math.min(Math.ceil(rows / 16), Math.floor(1024 / blocks)));
  const rowsPerChunk = Math.ceil(rows / chunks);
  return { chunks: Math.ceil(rows / rowsPerChunk), rowsPerChunk };
}

/**
 * Per-channel partial sums over row chunks of a [rows, C] view, written as [2, chunks, C]:
 * - 'stats': Σ (x - s) and Σ (x - s)² with s = x[0, c] (shifted sums: the variance is E[(x-s)²] - E[x-s]², exact
 *   enough in float32 when s is a sample of the channel);
 * - 'grad': Σ g and Σ g · x̂ with g = dy (masked by y > 0 under ReLU) and x̂ = (x - mean) · invStd.
 * Workgroup: 64 channels × 4 row lanes, so consecutive threads read consecutive channels of a row.
 */
export class BnReduceProgram implements WebGPUProgram {
  variableNames: string[];
  uniforms = 'rows : i32, C : i32, chunks : i32, rowsPerChunk : i32,';
  workgroupSize: [number, number, number] = [64, 4, 1];
  dispatchLayout = { x: [2], y: [1], z: [0] };
  dispatch: [number, number, number];
  outputShape: number[];
  shaderKey: string;

  constructor(
    readonly kind: 'stats' | 'grad',
    readonly relu: boolean,
    channels: number,
    chunks: number,
  ) {
    // Only what the shader reads: TF.js binds every name, and an unused binding fails the auto pipeline layout.
    this.variableNames =
      kind === 'stats' ? ['x'] : relu ? ['dy', 'x', 'y', 'mean', 'invStd'] : ['dy', 'x', 'mean', 'invStd'];
    this.outputShape = [2, chunks, channels];
    this.dispatch = [Math.ceil(channels / 64), chunks, 1];
    this.shaderKey = `gpulabBnReduce_${kind}_${relu}`;
  }

  getUserCode(): string {
    const load =
      this.kind === 'stats'
        ? `let v = x[i] - shift;
           s0 += v;
           s1 += v * v;`
        : `var g = dy[i];
           ${this.relu ? 'if (y[i] <= 0.0) { g = 0.0; }' : ''}
           s0 += g;
           s1 += g * ((x[i] - mu) * inv);`;
    return `
      var<workgroup> red : array<f32, 512>;

      fn main() {
        let c = i32(workgroupId.x) * 64 + i32(localId.x);
        let lane = i32(localId.y);
        let chunk = i32(workgroupId.y);
        let C = uniforms.C;
        var s0 = 0.0;
        var s1 = 0.0;
        if (c < C) {
          ${this.kind === 'stats' ? 'let shift = x[c];' : 'let mu = mean[c]; let inv = invStd[c];'}
          let begin = chunk * uniforms.rowsPerChunk;
          let end = min(begin + uniforms.rowsPerChunk, uniforms.rows);
          for (var r = begin + lane; r < end; r += 4) {
            let i = r * C + c;
            ${load}
          }
        }
        red[i32(localIndex)] = s0;
        red[256 + i32(localIndex)] = s1;
        workgroupBarrier();
        if (lane == 0 && c < C) {
          let l = i32(localId.x);
          let t0 = red[l] + red[64 + l] + red[128 + l] + red[192 + l];
          let t1 = red[256 + l] + red[320 + l] + red[384 + l] + red[448 + l];
          result[chunk * C + c] = t0;
          result[(uniforms.chunks + chunk) * C + c] = t1;
        }
      }
    `;
  }
}

/**
 * One thread per channel finishes BnReduceProgram's sums into [rows, C]:
 * - 'mean' | 'invStd' | 'variance' (the biased batch variance) from the 'stats' sums (inputs parts, x);
 * - 'dbeta' | 'dgamma' from the 'grad' sums (input parts);
 * - 'dxCoef' (inputs parts, mean, invStd, gamma): [mean, invStd, gamma · invStd, dbeta / n, dgamma / n].
 */
export type BnFinalizeKind = 'mean' | 'invStd' | 'variance' | 'dbeta' | 'dgamma' | 'dxCoef';

export class BnFinalizeProgram implements WebGPUProgram {
  variableNames: string[];
  uniforms = 'C : i32, chunks : i32, n : f32, eps : f32,';
  size = true;
  workgroupSize: [number, number, number] = [64, 1, 1];
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  outputShape: number[];
  shaderKey: string;

  constructor(
    readonly kind: BnFinalizeKind,
    channels: number,
  ) {
    this.variableNames =
      kind === 'dxCoef' ? ['parts', 'mean', 'invStd', 'gamma'] : kind === 'mean' ? ['parts', 'x'] : ['parts'];
    this.outputShape = kind === 'dxCoef' ? [5 * channels] : [channels];
    this.dispatch = [Math.ceil(channels / 64), 1, 1];
    this.shaderKey = `gpulabBnFinalize_${kind}`;
  }

  getUserCode(): string {
    const body: Record<BnFinalizeKind, string> = {
      mean: 'result[c] = x[c] + s0 / uniforms.n;',
      variance: 'result[c] = variance;',
      invStd: 'result[c] = 1.0 / sqrt(variance + uniforms.eps);',
      dbeta: 'result[c] = s0;',
      dgamma: 'result[c] = s1;',
      dxCoef: `let inv = invStd[c];
        result[c] = mean[c];
        result[C + c] = inv;
        result[2 * C + c] = gamma[c] * inv;
        result[3 * C + c] = s0 / uniforms.n;
        result[4 * C + c] = s1 / uniforms.n;`,
    };
    const variance = this.kind === 'variance' || this.kind === 'invStd';
    return `
      fn main(c : i32) {
        let C = uniforms.C;
        if (c >= C) {
          return;
        }
        var s0 = 0.0;
        var s1 = 0.0;
        for (var r = 0; r < uniforms.chunks; r++) {
          s0 += parts[r * C + c];
          s1 += parts[(uniforms.chunks + r) * C + c];
        }
        ${variance ? 'let m = s0 / uniforms.n; let variance = max(s1 / uniforms.n - m * m, 0.0);' : ''}
        ${body[this.kind]}
      }
    `;
  }
}

/** y = (x - mean) · invStd · gamma + beta, then max(y, 0) under ReLU. */
export class BnNormalizeProgram implements WebGPUProgram {
  variableNames = ['x', 'mean', 'invStd', 'gamma', 'beta'];
  uniforms = 'C : i32,';
  size = true;
  workgroupSize: [number, number, number] = [256, 1, 1];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  outputShape: number[];
  shaderKey: string;

  constructor(
    shape: number[],
    readonly relu: boolean,
  ) {
    ({
      outputShape: this.outputShape,
      dispatchLayout: this.dispatchLayout,
      dispatch: this.dispatch,
    } = flat(shape, 256));
    this.shaderKey = `gpulabBnNormalize_${relu}`;
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let c = index % uniforms.C;
          let v = (x[index] - mean[c]) * invStd[c] * gamma[c] + beta[c];
          result[index] = ${this.relu ? 'max(v, 0.0)' : 'v'};
        }
      }
    `;
  }
}

/** dx = gamma · invStd · (g - dbeta / n - x̂ · dgamma / n), g = dy masked by y > 0 under ReLU (coef: dxCoef rows). */
export class BnDxProgram implements WebGPUProgram {
  variableNames: string[];
  uniforms = 'C : i32,';
  size = true;
  workgroupSize: [number, number, number] = [256, 1, 1];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  outputShape: number[];
  shaderKey: string;

  constructor(
    shape: number[],
    readonly relu: boolean,
  ) {
    this.variableNames = relu ? ['dy', 'x', 'y', 'coef'] : ['dy', 'x', 'coef'];
    ({
      outputShape: this.outputShape,
      dispatchLayout: this.dispatchLayout,
      dispatch: this.dispatch,
    } = flat(shape, 256));
    this.shaderKey = `gpulabBnDx_${relu}`;
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let C = uniforms.C;
          let c = index % C;
          var g = dy[index];
          ${this.relu ? 'if (y[index] <= 0.0) { g = 0.0; }' : ''}
          let xhat = (x[index] - coef[c]) * coef[C + c];
          result[index] = coef[2 * C + c] * (g - coef[3 * C + c] - xhat * coef[4 * C + c]);
        }
      }
    `;
  }
}

/**
 * One half of the fused SGD step (the same float operations as the composed update and the native kernel):
 * 'buffer': buf' = momentum · buf + (g + wd · p); 'param': p' = p - lr · (nesterov ? (g + wd · p) + momentum · buf'
 * : buf').
 */
export class SgdStepProgram implements WebGPUProgram {
  variableNames: string[];
  uniforms = 'lr : f32, momentum : f32, wd : f32,';
  size = true;
  workgroupSize: [number, number, number] = [256, 1, 1];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  outputShape: number[];
  shaderKey: string;

  /** `buf` is the old buffer for 'buffer' and the new one for 'param'. */
  constructor(
    shape: number[],
    readonly part: 'buffer' | 'param',
    readonly nesterov: boolean,
  ) {
    this.variableNames = part === 'param' && !nesterov ? ['p', 'buf'] : ['p', 'g', 'buf'];
    ({
      outputShape: this.outputShape,
      dispatchLayout: this.dispatchLayout,
      dispatch: this.dispatch,
    } = flat(shape, 256));
    this.shaderKey = `gpulabSgd_${part}_${nesterov}`;
  }

  getUserCode(): string {
    const gi = 'let gi = g[index] + uniforms.wd * p[index];';
    const out =
      this.part === 'buffer'
        ? `${gi} result[index] = uniforms.momentum * buf[index] + gi;`
        : this.nesterov
          ? `${gi} result[index] = p[index] - uniforms.lr * (gi + uniforms.momentum * buf[index]);`
          : 'result[index] = p[index] - uniforms.lr * buf[index];';
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${out}
        }
      }
    `;
  }
}
