/**
 * The tensors of torchvision's `resnet18(num_classes=N)`, in `state_dict()` order, with their PyTorch shapes.
 * One description drives the model, the weight loader, the initialisers and the reference generator.
 */

/** Where a tensor lives: the stem (conv1/bn1), one of the four residual stages, or the classifier head. */
export type Stage = 'stem' | 'layer1' | 'layer2' | 'layer3' | 'layer4' | 'fc';
export const BACKBONE_STAGES = ['stem', 'layer1', 'layer2', 'layer3', 'layer4'] as const;

export type TensorRole =
  | 'conv'
  | 'bn.weight'
  | 'bn.bias'
  | 'bn.running_mean'
  | 'bn.running_var'
  | 'bn.num_batches_tracked'
  | 'fc.weight'
  | 'fc.bias';

export interface TensorDesc {
  /** torchvision name, e.g. `layer2.0.downsample.0.weight`. */
  name: string;
  role: TensorRole;
  stage: Stage;
  /** Shape in PyTorch's layout: conv [O, I, KH, KW], linear [out, in]. */
  torchShape: number[];
}

/** True for tensors an optimizer updates (conv/linear weights, biases, batch-norm affine parameters). */
export function isParameter(role: TensorRole): boolean {
  return role === 'conv' || role === 'bn.weight' || role === 'bn.bias' || role === 'fc.weight' || role === 'fc.bias';
}

export const FEATURES = 512;
/** [stage, input channels, output channels, first block's stride] */
const STAGES: [Stage, number, number, number][] = [
  ['layer1', 64, 64, 1],
  ['layer2', 64, 128, 2],
  ['layer3', 128, 256, 2],
  ['layer4', 256, 512, 2],
];

export interface ConvDesc {
  weight: string;
  bn: string;
  stride: number;
  pad: number;
}

export interface BlockDesc {
  stage: Stage;
  conv1: ConvDesc;
  conv2: ConvDesc;
  downsample: ConvDesc | null;
}

/** The residual blocks of ResNet18 ([2, 2, 2, 2] BasicBlocks). */
export function resnet18Blocks(): BlockDesc[] {
  const blocks: BlockDesc[] = [];
  for (const [stage, cin, cout, stride] of STAGES) {
    for (let b = 0; b < 2; b++) {
      const p = `${stage}.${b}`;
      const s = b === 0 ? stride : 1;
      const needsDownsample = b === 0 && (s !== 1 || cin !== cout);
      blocks.push({
        stage,
        conv1: { weight: `${p}.conv1.weight`, bn: `${p}.bn1`, stride: s, pad: 1 },
        conv2: { weight: `${p}.conv2.weight`, bn: `${p}.bn2`, stride: 1, pad: 1 },
        downsample: needsDownsample
          ? { weight: `${p}.downsample.0.weight`, bn: `${p}.downsample.1`, stride: s, pad: 0 }
          : null,
      });
    }
  }
  return blocks;
}

function bn(out: TensorDesc[], prefix: string, stage: Stage, c: number, withCounter: boolean): void {
  out.push({ name: `${prefix}.weight`, role: 'bn.weight', stage, torchShape: [c] });
  out.push({ name: `${prefix}.bias`, role: 'bn.bias', stage, torchShape: [c] });
  out.push({ name: `${prefix}.running_mean`, role: 'bn.running_mean', stage, torchShape: [c] });
  out.push({ name: `${prefix}.running_var`, role: 'bn.running_var', stage, torchShape: [c] });
  if (withCounter)
    out.push({ name: `${prefix}.num_batches_tracked`, role: 'bn.num_batches_tracked', stage, torchShape: [] });
}

/**
 * Every tensor of the state dict in torchvision's order. `num_batches_tracked` entries (int64 scalars that do not
 * affect the computation) are included only when asked for.
 */
export function resnet18Tensors(numClasses: number, opts: { numBatchesTracked?: boolean } = {}): TensorDesc[] {
  const withCounter = opts.numBatchesTracked ?? false;
  const out: TensorDesc[] = [{ name: 'conv1.weight', role: 'conv', stage: 'stem', torchShape: [64, 3, 7, 7] }];
  bn(out, 'bn1', 'stem', 64, withCounter);
  const blocks = resnet18Blocks();
  for (const [stage, cin, cout] of STAGES) {
    for (const [i, block] of blocks.filter((b) => b.stage === stage).entries()) {
      const inC = i === 0 ? cin : cout;
      out.push({ name: block.conv1.weight, role: 'conv', stage, torchShape: [cout, inC, 3, 3] });
      bn(out, block.conv1.bn, stage, cout, withCounter);
      out.push({ name: block.conv2.weight, role: 'conv', stage, torchShape: [cout, cout, 3, 3] });
      bn(out, block.conv2.bn, stage, cout, withCounter);
      if (block.downsample) {
        out.push({ name: block.downsample.weight, role: 'conv', stage, torchShape: [cout, inC, 1, 1] });
        bn(out, block.downsample.bn, stage, cout, withCounter);
      }
    }
  }
  out.push({ name: 'fc.weight', role: 'fc.weight', stage: 'fc', torchShape: [numClasses, FEATURES] });
  out.push({ name: 'fc.bias', role: 'fc.bias', stage: 'fc', torchShape: [numClasses] });
  return out;
}

/** The TF.js layout of a tensor: conv HWIO, linear [in, out], everything else unchanged. */
export function tfShape(desc: TensorDesc): number[] {
  const s = desc.torchShape;
  if (desc.role === 'conv') return [s[2]!, s[3]!, s[1]!, s[0]!];
  if (desc.role === 'fc.weight') return [s[1]!, s[0]!];
  return [...s];
}
