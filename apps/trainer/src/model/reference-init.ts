/**
 * The deterministic weight and input generator of /work/shared/fixtures/resnet18/README.md: every element of every
 * tensor is a hash of (tensor name, element index, seed), so a TypeScript model and torchvision can be filled with
 * bit-identical float32 values and their outputs compared.
 */
import { resnet18Tensors } from './architecture';
import { uniformStream } from './hash-random';
import type { StateDict } from './state-dict';

/** The value of element `i` of tensor `name` (PyTorch layout, row-major), per the README's table. */
function valueFn(name: string, role: string, torchShape: number[], seed: number): ((i: number) => number) | null {
  const u = uniformStream(seed, name);
  const s = (i: number) => 2 * u(i) - 1;
  switch (role) {
    case 'fc.weight': {
      const scale = Math.fround(1 / Math.sqrt(torchShape[1]!));
      return (i) => s(i) * scale;
    }
    case 'fc.bias':
      return (i) => 0.01 * s(i);
    case 'conv': {
      const [, cin, kh, kw] = torchShape as [number, number, number, number];
      const scale = Math.fround(Math.sqrt(3 / (cin * kh * kw)));
      return (i) => s(i) * scale;
    }
    case 'bn.weight':
      return (i) => 1 + 0.25 * s(i);
    case 'bn.bias':
    case 'bn.running_mean':
      return (i) => 0.1 * s(i);
    case 'bn.running_var':
      return (i) => 0.5 + u(i);
    default:
      return null; // num_batches_tracked: not used
  }
}

/** The reference state dict (PyTorch layouts) of `resnet18(num_classes)` for `seed`. */
export function referenceStateDict(seed: number, numClasses = 10): StateDict {
  const dict: StateDict = new Map();
  for (const desc of resnet18Tensors(numClasses)) {
    const fn = valueFn(desc.name, desc.role, desc.torchShape, seed);
    if (!fn) continue;
    const n = desc.torchShape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n); // assignment rounds each double to float32 once: f32(...)
    for (let i = 0; i < n; i++) data[i] = fn(i);
    dict.set(desc.name, { shape: [...desc.torchShape], data });
  }
  return dict;
}

/** A reference input named `name` (e.g. `input64`), NCHW, value `s = 2u - 1`. */
export function referenceInput(name: string, shape: number[], seed: number): Float32Array {
  const u = uniformStream(seed, name);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = 2 * u(i) - 1;
  return out;
}

/** [sum (in float64), first element, last element] of a tensor, as the fixture's `checks` records them. */
export function checkValues(data: Float32Array): [number, number, number] {
  let sum = 0;
  for (const v of data) sum += v;
  return [sum, data[0] ?? Number.NaN, data[data.length - 1] ?? Number.NaN];
}

/** NCHW -> NHWC on a flat array (one-off conversion of fixture inputs; not a hot path). */
export function nchwToNhwc(data: Float32Array, [n, c, h, w]: [number, number, number, number]): Float32Array {
  const out = new Float32Array(data.length);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) out[((b * h + y) * w + x) * c + ch] = data[((b * c + ch) * h + y) * w + x]!;
  return out;
}
