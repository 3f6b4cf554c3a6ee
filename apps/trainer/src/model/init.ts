/**
 * torchvision's default ResNet initialisation, made deterministic by deriving every tensor from (seed, name):
 * conv weights kaiming_normal_(mode='fan_out', nonlinearity='relu'), batch norm weight 1 / bias 0, running mean 0 /
 * var 1, and nn.Linear's default (kaiming_uniform_(a=sqrt(5)) => U(-1/sqrt(in), 1/sqrt(in)) for weight and bias).
 */
import { resnet18Tensors } from './architecture';
import { fillNormal, fillUniform } from './hash-random';
import { numel, type StateDict } from './state-dict';

/** A fresh classifier head [numClasses, 512] + [numClasses] in PyTorch layout, as nn.Linear initialises it. */
export function linearHeadInit(numClasses: number, inFeatures: number, seed: number): StateDict {
  const bound = 1 / Math.sqrt(inFeatures);
  const u = (x: number) => (2 * x - 1) * bound;
  return new Map([
    [
      'fc.weight',
      { shape: [numClasses, inFeatures], data: fillUniform(seed, 'init/fc.weight', numClasses * inFeatures, u) },
    ],
    ['fc.bias', { shape: [numClasses], data: fillUniform(seed, 'init/fc.bias', numClasses, u) }],
  ]);
}

/** A complete randomly initialised state dict (PyTorch layouts) for training from scratch. */
export function randomStateDict(numClasses: number, seed: number): StateDict {
  const dict: StateDict = new Map();
  for (const d of resnet18Tensors(numClasses)) {
    const n = numel(d.torchShape);
    switch (d.role) {
      case 'conv': {
        const [o, , kh, kw] = d.torchShape as [number, number, number, number];
        const std = Math.sqrt(2 / (o * kh * kw));
        dict.set(d.name, { shape: d.torchShape, data: fillNormal(seed, `init/${d.name}`, n, std) });
        break;
      }
      case 'bn.weight':
      case 'bn.running_var':
        dict.set(d.name, { shape: d.torchShape, data: new Float32Array(n).fill(1) });
        break;
      case 'bn.bias':
      case 'bn.running_mean':
        dict.set(d.name, { shape: d.torchShape, data: new Float32Array(n) });
        break;
      default:
        break;
    }
  }
  for (const [k, v] of linearHeadInit(numClasses, 512, seed)) dict.set(k, v);
  return dict;
}
