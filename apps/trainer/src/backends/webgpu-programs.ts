/**
 * WGSL programs for the webgpu backend's batch-norm and SGD kernels (webgpu-kernels.ts registers them; the
 * convolution gradients are in webgpu-conv-programs.ts). Each is a TF.js `WebGPUProgram`: TF.js writes the shader's
 * preamble (the output buffer `result`, one read-only storage buffer per name in `variableNames` — only names the
 * shader reads, as an unused binding fails the auto pipeline layout — and the `uniforms` struct with every input's
 * shape and the fields in `uniforms`); the user code here defines `main`.
 *
 * - Batch norm in train mode (+ ReLU): per-channel partial sums over row chunks (BnReduceProgram), one thread per
 *   channel to finish them (BnFinalizeProgram), one elementwise pass (BnNormalizeProgram / BnDxProgram): five
 *   dispatches each way instead of ~14 forward and ~12 backward composed ops.
 * - The running statistics' update: one pass each (BnRunningProgram) instead of three ops.
 * - SGD with momentum: two elementwise passes (new buffer, new parameter) instead of five or six ops and a scalar
 *   upload per parameter.
 */
import type { WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

/** A flat dispatch over every element of `shape`, `threads` per workgroup (one element each). */
export function flat(shape: number[], threads: number) {
  const size = shape.reduce((a, b) => a * b, 1);
  return {
    outputShape: shape,
    dispatchLayout: { x: shape.map((_, i) => i) },
    dispatch: [Math.ceil(size / threads), 1, 1] as [number, number, number],
  };
}

/**
 * A program of one thread per element of `shape` (flat dispatch): `body` runs with `index` below uniforms.size.
 * The elementwise kernels below are this with their own inputs, uniforms and body.
 */
export class ElementwiseProgram implements WebGPUProgram {
  variableNames: string[];
  uniforms: string;
  size = true;
  workgroupSize: [number, number, number];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  outputShape: number[];
  shaderKey: string;
  private readonly body: string;

  constructor(o: {
    shape: number[];
    threads: number;
    variableNames: string[];
    uniforms: string;
    shaderKey: string;
    body: string;
  }) {
    ({
      outputShape: this.outputShape,
      dispatchLayout: this.dispatchLayout,
      dispatch: this.dispatch,
    } = flat(o.shape, o.threads));
    this.workgroupSize = [o.threads, 1, 1];
    this.variableNames = o.variableNames;
    this.uniforms = o.uniforms;
    this.shaderKey = o.shaderKey;
    this.body = o.body;
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${this.body}
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
export class BnNormalizeProgram extends ElementwiseProgram {
  constructor(shape: number[], relu: boolean) {
    super({
      shape,
      threads: 256,
      variableNames: ['x', 'mean', 'invStd', 'gamma', 'beta'],
      uniforms: 'C : i32,',
      shaderKey: `gpulabBnNormalize_${relu}`,
      body: `let c = index % uniforms.C;
          let v = (x[index] - mean[c]) * invStd[c] * gamma[c] + beta[c];
          result[index] = ${relu ? 'max(v, 0.0)' : 'v'};`,
    });
  }
}

/** dx = gamma · invStd · (g - dbeta / n - x̂ · dgamma / n), g = dy masked by y > 0 under ReLU (coef: dxCoef rows). */
export class BnDxProgram extends ElementwiseProgram {
  constructor(shape: number[], relu: boolean) {
    super({
      shape,
      threads: 256,
      variableNames: relu ? ['dy', 'x', 'y', 'coef'] : ['dy', 'x', 'coef'],
      uniforms: 'C : i32,',
      shaderKey: `gpulabBnDx_${relu}`,
      body: `let C = uniforms.C;
          let c = index % C;
          var g = dy[index];
          ${relu ? 'if (y[index] <= 0.0) { g = 0.0; }' : ''}
          let xhat = (x[index] - coef[c]) * coef[C + c];
          result[index] = coef[2 * C + c] * (g - coef[3 * C + c] - xhat * coef[4 * C + c]);`,
    });
  }
}

/**
 * One half of the fused SGD step (the same float operations as the composed update and the native kernel):
 * 'buffer': buf' = momentum · buf + (g + wd · p); 'param': p' = p - lr · (nesterov ? (g + wd · p) + momentum · buf'
 * : buf'). `buf` is the old buffer for 'buffer' and the new one for 'param'.
 */
export class SgdStepProgram extends ElementwiseProgram {
  constructor(shape: number[], part: 'buffer' | 'param', nesterov: boolean) {
    const gi = 'let gi = g[index] + uniforms.wd * p[index];';
    super({
      shape,
      threads: 256,
      variableNames: part === 'param' && !nesterov ? ['p', 'buf'] : ['p', 'g', 'buf'],
      uniforms: 'lr : f32, momentum : f32, wd : f32,',
      shaderKey: `gpulabSgd_${part}_${nesterov}`,
      body:
        part === 'buffer'
          ? `${gi} result[index] = uniforms.momentum * buf[index] + gi;`
          : nesterov
            ? `${gi} result[index] = p[index] - uniforms.lr * (gi + uniforms.momentum * buf[index]);`
            : 'result[index] = p[index] - uniforms.lr * buf[index];',
    });
  }
}

/** running · keep + stat · take (a batch norm's running mean or variance after a train-mode step). */
export class BnRunningProgram extends ElementwiseProgram {
  constructor(shape: number[]) {
    super({
      shape,
      threads: 64,
      variableNames: ['running', 'stat'],
      uniforms: 'keep : f32, take : f32,',
      shaderKey: 'gpulabBnRunning',
      body: 'result[index] = running[index] * uniforms.keep + stat[index] * uniforms.take;',
    });
  }
}
