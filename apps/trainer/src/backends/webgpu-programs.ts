/**
 * WGSL programs for the webgpu backend's batch-norm, SGD and residual kernels (webgpu-kernels.ts runs them through
 * webgpu-direct.ts; the convolution gradients are in webgpu-conv-programs.ts). Each is a `DirectProgram`: the user
 * code of a TF.js program (webgpu-direct.ts writes the preamble: the storage buffers named in `inputs` / `outputs`,
 * the `uniforms` struct of the scalar fields listed, the builtins), able to write several outputs.
 *
 * - Batch norm in train mode (+ residual) (+ ReLU): per-channel partial sums over row chunks (bnReduce), one thread
 *   per channel to finish them into every per-channel result at once (bnFinalizeStats: mean, invStd and the new
 *   running statistics; bnFinalizeGrad: dgamma, dbeta and dx's coefficients), one elementwise pass (bnNormalize /
 *   bnDx, the latter also writing the residual's gradient): three dispatches each way.
 * - SGD with momentum: one elementwise pass writing the new parameter and the new buffer.
 * - Eval mode's residual add + ReLU in one pass.
 */
import type { DirectProgram, UniformType } from './webgpu-direct';

type Fields = readonly (readonly [string, UniformType])[];
const ints = (...names: string[]): Fields => names.map((n) => [n, 'i32'] as const);
const floats = (...names: string[]): Fields => names.map((n) => [n, 'f32'] as const);

/** Elements of a shape. */
export const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * A program of one thread per element of a flat range (`uniforms.size` elements, its last uniform, given by
 * runDirect's caller as elementwiseUniforms does): `body` runs with `index` below uniforms.size.
 */
export function elementwise(o: {
  key: string;
  size: number;
  threads: number;
  inputs: readonly string[];
  outputs: readonly string[];
  uniforms?: Fields;
  body: string;
}): DirectProgram {
  return {
    key: o.key,
    inputs: o.inputs,
    outputs: o.outputs,
    uniforms: [...(o.uniforms ?? []), ['size', 'i32']],
    workgroupSize: [o.threads, 1, 1],
    workgroups: [Math.ceil(o.size / o.threads), 1, 1],
    flat: true,
    code: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${o.body}
        }
      }
    `,
  };
}

/** Row chunks of the per-channel reductions: about 1,024 workgroups, at least 16 rows each. */
export function bnChunks(rows: number, channels: number): { chunks: number; rowsPerChunk: number } {
  const blocks = Math.ceil(channels / 64);
  const chunks = Math.max(1, Math.min(Math.ceil(rows / 16), Math.floor(1024 / blocks)));
  const rowsPerChunk = Math.ceil(rows / chunks);
  return { chunks: Math.ceil(rows / rowsPerChunk), rowsPerChunk };
}

/**
 * Per-channel partial sums over row chunks of a [rows, C] view, written as [2, chunks, C] (uniforms rows, C, chunks,
 * rowsPerChunk):
 * - 'stats': Σ (x - s) and Σ (x - s)² with s = x[0, c] (shifted sums: the variance is E[(x-s)²] - E[x-s]², exact
 *   enough in float32 when s is a sample of the channel);
 * - 'grad': Σ g and Σ g · x̂ with g = dy (masked by y > 0 under ReLU) and x̂ = (x - mean) · invStd.
 * Workgroup: 64 channels × 4 row lanes, so consecutive threads read consecutive channels of a row.
 */
export function bnReduce(kind: 'stats' | 'grad', relu: boolean, channels: number, chunks: number): DirectProgram {
  const load =
    kind === 'stats'
      ? `let v = x[i] - shift;
           s0 += v;
           s1 += v * v;`
      : `var g = dy[i];
           ${relu ? 'if (y[i] <= 0.0) { g = 0.0; }' : ''}
           s0 += g;
           s1 += g * ((x[i] - mu) * inv);`;
  return {
    key: `gpulabBnReduce_${kind}_${relu}`,
    inputs: kind === 'stats' ? ['x'] : relu ? ['dy', 'x', 'y', 'mean', 'invStd'] : ['dy', 'x', 'mean', 'invStd'],
    outputs: ['result'],
    uniforms: ints('rows', 'C', 'chunks', 'rowsPerChunk'),
    workgroupSize: [64, 4, 1],
    workgroups: [Math.ceil(channels / 64), chunks, 1],
    flat: false,
    code: () => `
      var<workgroup> red : array<f32, 512>;

      fn main() {
        let c = i32(workgroupId.x) * 64 + i32(localId.x);
        let lane = i32(localId.y);
        let chunk = i32(workgroupId.y);
        let C = uniforms.C;
        var s0 = 0.0;
        var s1 = 0.0;
        if (c < C) {
          ${kind === 'stats' ? 'let shift = x[c];' : 'let mu = mean[c]; let inv = invStd[c];'}
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
    `,
  };
}

/** One thread per channel: s0, s1 = the sums of bnReduce's chunks (then `body`), uniforms C, chunks, n, ... */
function bnFinalize(key: string, inputs: string[], outputs: string[], extra: Fields, channels: number, body: string) {
  return {
    key,
    inputs: ['parts', ...inputs],
    outputs,
    uniforms: [...ints('C', 'chunks'), ...floats('n'), ...extra],
    workgroupSize: [64, 1, 1] as const,
    workgroups: [Math.ceil(channels / 64), 1, 1] as const,
    flat: true,
    code: () => `
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
        ${body}
      }
    `,
  } satisfies DirectProgram;
}

/**
 * The 'stats' sums finished (uniforms C, chunks, n, eps[, keep, takeMean, takeVar]): mean, invStd and either the
 * biased batch variance (`running` false) or the new running statistics (running · keep + stat · take, the
 * variance's take being momentum · n / (n - 1)), from inputs parts, x[, runningMean, runningVar].
 */
export function bnFinalizeStats(channels: number, running: boolean): DirectProgram {
  const common = `let m = s0 / uniforms.n;
        let variance = max(s1 / uniforms.n - m * m, 0.0);
        let mu = x[c] + s0 / uniforms.n;
        mean[c] = mu;
        invStd[c] = 1.0 / sqrt(variance + uniforms.eps);`;
  return running
    ? bnFinalize(
        'gpulabBnFinalizeStats_running',
        ['x', 'runningMean', 'runningVar'],
        ['mean', 'invStd', 'newMean', 'newVar'],
        floats('eps', 'keep', 'takeMean', 'takeVar'),
        channels,
        `${common}
        newMean[c] = runningMean[c] * uniforms.keep + mu * uniforms.takeMean;
        newVar[c] = runningVar[c] * uniforms.keep + variance * uniforms.takeVar;`,
      )
    : bnFinalize(
        'gpulabBnFinalizeStats',
        ['x'],
        ['mean', 'invStd', 'biasedVar'],
        floats('eps'),
        channels,
        `${common}
        biasedVar[c] = variance;`,
      );
}

/**
 * The 'grad' sums finished (inputs parts, mean, invStd, gamma; uniforms C, chunks, n): dgamma, dbeta and dx's
 * coefficients [mean, invStd, gamma · invStd, dbeta / n, dgamma / n] as a [5 · C] tensor.
 */
export function bnFinalizeGrad(channels: number): DirectProgram {
  return bnFinalize(
    'gpulabBnFinalizeGrad',
    ['mean', 'invStd', 'gamma'],
    ['dgamma', 'dbeta', 'coef'],
    [],
    channels,
    `dbeta[c] = s0;
        dgamma[c] = s1;
        let inv = invStd[c];
        coef[c] = mean[c];
        coef[C + c] = inv;
        coef[2 * C + c] = gamma[c] * inv;
        coef[3 * C + c] = s0 / uniforms.n;
        coef[4 * C + c] = s1 / uniforms.n;`,
  );
}

/** y = (x - mean) · invStd · gamma + beta (+ residual), then max(y, 0) under ReLU (uniforms C, size). */
export function bnNormalize(size: number, relu: boolean, residual: boolean): DirectProgram {
  const v = residual ? 'v + residual[index]' : 'v';
  return elementwise({
    key: `gpulabBnNormalize_${relu}_${residual}`,
    size,
    threads: 256,
    inputs: ['x', 'mean', 'invStd', 'gamma', 'beta', ...(residual ? ['residual'] : [])],
    outputs: ['result'],
    uniforms: ints('C'),
    body: `let c = index % uniforms.C;
          let v = (x[index] - mean[c]) * invStd[c] * gamma[c] + beta[c];
          result[index] = ${relu ? `max(${v}, 0.0)` : v};`,
  });
}

/**
 * dx = gamma · invStd · (g - dbeta / n - x̂ · dgamma / n), g = dy masked by y > 0 under ReLU (coef: bnFinalizeGrad's
 * coefficients; uniforms C, size); with `residual`, g (the gradient of the residual added before the ReLU) too.
 */
export function bnDx(size: number, relu: boolean, residual: boolean): DirectProgram {
  return elementwise({
    key: `gpulabBnDx_${relu}_${residual}`,
    size,
    threads: 256,
    inputs: relu ? ['dy', 'x', 'y', 'coef'] : ['dy', 'x', 'coef'],
    outputs: residual ? ['result', 'dresidual'] : ['result'],
    uniforms: ints('C'),
    body: `let C = uniforms.C;
          let c = index % C;
          var g = dy[index];
          ${relu ? 'if (y[index] <= 0.0) { g = 0.0; }' : ''}
          let xhat = (x[index] - coef[c]) * coef[C + c];
          result[index] = coef[2 * C + c] * (g - coef[3 * C + c] - xhat * coef[4 * C + c]);
          ${residual ? 'dresidual[index] = g;' : ''}`,
  });
}

/**
 * The SGD momentum step in one pass (inputs p, g, buf; uniforms lr, momentum, wd, size), the same float operations
 * as the composed update and the native kernel: buf' = momentum · buf + (g + wd · p); p' = p - lr · (nesterov ?
 * (g + wd · p) + momentum · buf' : buf'). Outputs p', buf'.
 */
export function sgdStep(size: number, nesterov: boolean): DirectProgram {
  return elementwise({
    key: `gpulabSgd_${nesterov}`,
    size,
    threads: 256,
    inputs: ['p', 'g', 'buf'],
    outputs: ['newP', 'newBuf'],
    uniforms: floats('lr', 'momentum', 'wd'),
    body: `let gi = g[index] + uniforms.wd * p[index];
          let b1 = uniforms.momentum * buf[index] + gi;
          newBuf[index] = b1;
          newP[index] = ${nesterov ? 'p[index] - uniforms.lr * (gi + uniforms.momentum * b1)' : 'p[index] - uniforms.lr * b1'};`,
  });
}

/** running · keep + stat · take (a batch norm's running mean or variance after a train-mode step). */
export function bnRunning(size: number): DirectProgram {
  return elementwise({
    key: 'gpulabBnRunning',
    size,
    threads: 64,
    inputs: ['running', 'stat'],
    outputs: ['result'],
    uniforms: floats('keep', 'take'),
    body: 'result[index] = running[index] * uniforms.keep + stat[index] * uniforms.take;',
  });
}

/** relu(a + b) as TF.js's Add then Relu compute it (eval mode's residual). */
export function addRelu(size: number): DirectProgram {
  return elementwise({
    key: 'gpulabAddRelu',
    size,
    threads: 256,
    inputs: ['a', 'b'],
    outputs: ['result'],
    body: `let s = a[index] + b[index];
          result[index] = select(s, 0.0, s < 0.0);`,
  });
}
