/** Convolution cases and helpers shared by the wasm and native kernel tests (each checked against the cpu backend). */
import * as tf from '@tensorflow/tfjs-core';
import { type NativeMode, selectBackend } from '../../src/backends';

type Pad = 'valid' | 'same' | [[number, number], [number, number], [number, number], [number, number]];
export interface Case {
  x: [number, number, number, number];
  w: [number, number, number, number];
  stride: number | [number, number];
  pad: Pad;
}

export const explicit = (t: number, b: number, l: number, r: number): Pad => [
  [0, 0],
  [t, b],
  [l, r],
  [0, 0],
];

export const CASES: Case[] = [
  { x: [2, 9, 9, 3], w: [3, 3, 3, 4], stride: 1, pad: explicit(1, 1, 1, 1) },
  { x: [2, 9, 9, 3], w: [3, 3, 3, 4], stride: 2, pad: explicit(1, 1, 1, 1) },
  { x: [2, 10, 11, 5], w: [7, 7, 5, 6], stride: 2, pad: explicit(3, 3, 3, 3) }, // ResNet's conv1 shape family
  { x: [3, 8, 8, 4], w: [1, 1, 4, 6], stride: 2, pad: 'valid' }, // downsample
  { x: [2, 7, 6, 3], w: [3, 2, 3, 4], stride: [1, 2], pad: 'same' },
  { x: [1, 12, 12, 2], w: [5, 5, 2, 3], stride: 3, pad: explicit(2, 1, 0, 2) },
  { x: [4, 4, 4, 16], w: [3, 3, 16, 8], stride: 2, pad: explicit(1, 1, 1, 1) },
  { x: [2, 2, 2, 8], w: [3, 3, 8, 8], stride: 1, pad: explicit(1, 1, 1, 1) }, // tiny map, as layer4 at 64 px
  // Few output positions next to many output channels: dX takes the matmul + col2im path.
  { x: [1, 2, 2, 16], w: [3, 3, 16, 64], stride: 1, pad: explicit(1, 1, 1, 1) },
  { x: [2, 4, 4, 8], w: [3, 3, 8, 64], stride: 2, pad: explicit(1, 1, 1, 1) },
  { x: [1, 5, 6, 3], w: [7, 7, 3, 40], stride: 2, pad: explicit(3, 3, 3, 3) },
  { x: [2, 3, 3, 4], w: [1, 1, 4, 48], stride: 2, pad: 'valid' },
];

export function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

export async function convGrads(
  backend: 'cpu' | 'wasm',
  c: Case,
  x: Float32Array,
  w: Float32Array,
  dy: Float32Array,
  native: NativeMode = 'off',
  yShape: number[] = outShape(c),
) {
  await selectBackend(backend, { native });
  return tf.tidy(() => {
    const X = tf.tensor4d(x, c.x);
    const W = tf.tensor4d(w, c.w);
    const f = (a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad), tf.tensor(dy, yShape)));
    const [dx, dw] = tf.grads(f)([X, W]);
    return {
      y: tf.conv2d(X, W, c.stride, c.pad).dataSync() as Float32Array,
      dx: dx!.dataSync() as Float32Array,
      dw: dw!.dataSync() as Float32Array,
    };
  });
}

let shapes: Map<Case, number[]> | undefined;
/** The output shape of case c (computed once on the cpu backend). */
export function outShape(c: Case): number[] {
  if (!shapes)
    shapes = new Map(
      CASES.map((k) => [
        k,
        tf.tidy(() => tf.conv2d(tf.zeros(k.x) as tf.Tensor4D, tf.zeros(k.w) as tf.Tensor4D, k.stride, k.pad).shape),
      ]),
    );
  return shapes.get(c)!;
}

/** Random inputs for case i: x, w and dy (seeded). */
export function caseData(c: Case, i: number): { x: Float32Array; w: Float32Array; dy: Float32Array } {
  const size = (s: number[]) => s.reduce((a, b) => a * b);
  return { x: seeded(size(c.x), 11 + i), w: seeded(size(c.w), 101 + i), dy: seeded(size(outShape(c)), 1001 + i) };
}
