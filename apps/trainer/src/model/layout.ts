/**
 * PyTorch <-> TF.js layout conversion on flat float32 arrays (done in JS: it runs once per load or checkpoint, and is
 * much faster than a rank-4 transpose kernel on some backends).
 *   conv: OIHW [O, I, H, W] <-> HWIO [H, W, I, O]
 *   linear: [out, in] <-> [in, out]
 */
import type { TensorRole } from './architecture';

/** OIHW -> HWIO */
export function oihwToHwio(src: Float32Array, [o, i, h, w]: readonly number[]): Float32Array {
  const O = o!;
  const I = i!;
  const HW = h! * w!;
  const out = new Float32Array(src.length);
  for (let oo = 0; oo < O; oo++)
    for (let ii = 0; ii < I; ii++) {
      const s = (oo * I + ii) * HW;
      for (let p = 0; p < HW; p++) out[(p * I + ii) * O + oo] = src[s + p]!;
    }
  return out;
}

/** HWIO -> OIHW, for a tensor whose PyTorch shape is [O, I, H, W]. */
export function hwioToOihw(src: Float32Array, [o, i, h, w]: readonly number[]): Float32Array {
  const O = o!;
  const I = i!;
  const HW = h! * w!;
  const out = new Float32Array(src.length);
  for (let oo = 0; oo < O; oo++)
    for (let ii = 0; ii < I; ii++) {
      const d = (oo * I + ii) * HW;
      for (let p = 0; p < HW; p++) out[d + p] = src[(p * I + ii) * O + oo]!;
    }
  return out;
}

/** Transposes a row-major [rows, cols] matrix. */
export function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c]!;
  return out;
}

/** PyTorch-layout data of a tensor with PyTorch shape `torchShape` -> TF.js-layout data. */
export function torchToTf(role: TensorRole, data: Float32Array, torchShape: readonly number[]): Float32Array {
  if (role === 'conv') return oihwToHwio(data, torchShape);
  if (role === 'fc.weight') return transpose2d(data, torchShape[0]!, torchShape[1]!);
  return data;
}

/** TF.js-layout data -> PyTorch-layout data, for a tensor with PyTorch shape `torchShape`. */
export function tfToTorch(role: TensorRole, data: Float32Array, torchShape: readonly number[]): Float32Array {
  if (role === 'conv') return hwioToOihw(data, torchShape);
  if (role === 'fc.weight') return transpose2d(data, torchShape[1]!, torchShape[0]!);
  return data;
}
