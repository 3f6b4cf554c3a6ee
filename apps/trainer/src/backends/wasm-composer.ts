/**
 * Composing wasm kernels from other wasm kernels inside a kernel function: runs them directly (no engine, no tape),
 * allocates outputs and reads/writes the wasm heap, and frees every intermediate when the kernel is done.
 */
import { getKernel, type KernelBackend, type TensorInfo } from '@tensorflow/tfjs-core';

const BACKEND = 'wasm';

/** The parts of tfjs-backend-wasm's BackendWasm used here (public methods of the class, not exported as a type). */
export interface WasmBackend extends KernelBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array;
  incRef(dataId: TensorInfo['dataId']): void;
}

/** Runs other kernels of the same backend and frees every intermediate when done. */
export class Composer {
  private readonly temps: TensorInfo[] = [];
  constructor(private readonly backend: WasmBackend) {}

  /**
   * x[begin : begin + size] for a rank-4 float32 tensor, copied row by row on the wasm heap. (The wasm Slice kernel
   * first copies its whole input out of the heap, which makes repeated slicing of one tensor quadratic.)
   */
  slice4(x: TensorInfo, begin: number[], size: number[]): TensorInfo {
    const shape = x.shape;
    if (shape.length !== 4 || begin.length !== 4 || size.length !== 4) throw new Error('slice4 needs rank 4');
    const out = this.backend.makeOutput([...size], 'float32');
    this.temps.push(out);
    // Views taken after the allocation (which may grow, and so detach, the heap).
    const src = this.backend.typedArrayFromHeap(x);
    const dst = this.backend.typedArrayFromHeap(out);
    const [d1, d2, d3] = [shape[1]!, shape[2]!, shape[3]!];
    const [b0, b1, b2, b3] = begin as [number, number, number, number];
    const [s0, s1, s2, s3] = size as [number, number, number, number];
    // Rows along the last axis; when the last axis is taken whole, rows extend over axis 2 as well.
    const merge = s3 === d3 && b3 === 0;
    const rowLen = merge ? s2 * d3 : s3;
    const rows2 = merge ? 1 : s2;
    let o = 0;
    for (let i0 = 0; i0 < s0; i0++) {
      for (let i1 = 0; i1 < s1; i1++) {
        const base = (((b0 + i0) * d1 + b1 + i1) * d2 + b2) * d3 + b3;
        for (let i2 = 0; i2 < rows2; i2++) {
          const start = base + i2 * d3;
          if (rowLen >= 32) dst.set(src.subarray(start, start + rowLen), o);
          else for (let k = 0; k < rowLen; k++) dst[o + k] = src[start + k]!;
          o += rowLen;
        }
      }
    }
    return out;
  }

  run(
    kernel: string,
    inputs: Record<string, TensorInfo> | TensorInfo[],
    attrs: Record<string, unknown> = {},
  ): TensorInfo {
    const fn = getKernel(kernel, BACKEND)?.kernelFunc;
    if (!fn) throw new Error(`wasm kernel ${kernel} is not registered`);
    const out = fn({ inputs: inputs as never, attrs: attrs as never, backend: this.backend }) as TensorInfo;
    this.temps.push(out);
    return out;
  }

  /** A new float32 output (uninitialised). */
  output(shape: number[]): TensorInfo {
    const out = this.backend.makeOutput(shape, 'float32');
    this.temps.push(out);
    return out;
  }

  /** A view of a tensor's data in the wasm heap. Take it after the last allocation (growth detaches views). */
  heap(t: TensorInfo): Float32Array {
    return this.backend.typedArrayFromHeap(t);
  }

  /** [rows, cols] -> [cols, rows], copied on the heap (faster than the Transpose kernel's fresh allocation path). */
  transpose2d(x: TensorInfo, rows: number, cols: number): TensorInfo {
    const out = this.output([cols, rows]);
    const src = this.heap(x);
    const dst = this.heap(out);
    const B = 32;
    for (let r0 = 0; r0 < rows; r0 += B) {
      const r1 = Math.min(rows, r0 + B);
      for (let c0 = 0; c0 < cols; c0 += B) {
        const c1 = Math.min(cols, c0 + B);
        for (let r = r0; r < r1; r++) {
          const base = r * cols;
          for (let q = c0; q < c1; q++) dst[q * rows + r] = src[base + q]!;
        }
      }
    }
    return out;
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  /** Disposes every intermediate except `result` (shared data stays alive through the backend's ref counts). */
  finish(result: TensorInfo): TensorInfo {
    for (const t of this.temps) if (t !== result) this.backend.disposeData(t.dataId);
    return result;
  }

  fail(e: unknown): never {
    for (const t of this.temps) this.backend.disposeData(t.dataId);
    throw e;
  }
}
