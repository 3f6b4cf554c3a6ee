/**
 * ResNet18 exactly as torchvision builds it (conv1 7x7/2 pad 3 without bias, bn, relu, maxpool 3x3/2 pad 1, four
 * stages of two BasicBlocks with 1x1/2 conv + bn downsampling, global average pool, fc), written with TF.js ops on
 * NHWC activations.
 *
 * Convolutions use explicit padding `[[0,0],[p,p],[p,p],[0,0]]`, which matches PyTorch's symmetric zero padding and
 * floor output size (TF's 'same' pads asymmetrically for even inputs and stride 2, and would not match).
 *
 * State lives in tf.Variables keyed by torchvision names in TF.js layouts (conv HWIO, fc [in, out]); running
 * statistics are non-trainable variables. `weights.ts` converts from/to PyTorch layouts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CONV_BIAS_ACT_KERNEL } from '../backends/native-kernels';
import {
  BACKBONE_STAGES,
  type BlockDesc,
  type ConvDesc,
  isParameter,
  resnet18Blocks,
  resnet18Tensors,
  type Stage,
  type TensorDesc,
  tfShape,
} from './architecture';
import { type BatchNormParams, BN_EPS, batchNormEval, batchNormTrain } from './batch-norm';

let instances = 0;

const NO_TRAIN: ReadonlySet<Stage> = new Set();
/** Keys of folded eval weights (ResNet18.folded), unique in the process. */
let foldKeys = 0;
export const ALL_TRAIN: ReadonlySet<Stage> = new Set(BACKBONE_STAGES);

function pad4(p: number): [[number, number], [number, number], [number, number], [number, number]] {
  return [
    [0, 0],
    [p, p],
    [p, p],
    [0, 0],
  ];
}

export class ResNet18 {
  readonly numClasses: number;
  /** Descriptions of every stored tensor (no num_batches_tracked), in state-dict order. */
  readonly tensors: readonly TensorDesc[];
  /** Per batch-norm prefix (e.g. `layer1.0.bn1`): train-mode batches seen (PyTorch's num_batches_tracked). */
  readonly numBatchesTracked = new Map<string, number>();
  private readonly vars = new Map<string, tf.Variable>();
  private readonly blocks: BlockDesc[] = resnet18Blocks();
  private disposed = false;
  /** Folded eval-mode conv + batch norm per convolution (convBn), keyed by the conv weight's name. */
  private readonly foldCache = new Map<string, { sources: object[]; w: tf.Tensor4D; b: tf.Tensor1D; key: number }>();

  /** Creates the model with zero-filled variables; load weights with `weights.ts` (loadStateDict / initialise). */
  constructor(numClasses: number) {
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new Error(`numClasses must be a positive integer`);
    this.numClasses = numClasses;
    this.tensors = resnet18Tensors(numClasses);
    const id = ++instances;
    for (const desc of this.tensors) {
      // Unique registered names: several models may live in one process (tests, the CLI).
      const v = tf.tidy(() =>
        tf.variable(tf.zeros(tfShape(desc)), isParameter(desc.role), `resnet18_${id}/${desc.name}`),
      );
      this.vars.set(desc.name, v);
    }
    for (const d of this.tensors) if (d.role === 'bn.weight') this.numBatchesTracked.set(bnPrefix(d.name), 0);
  }

  /** The variable holding `name` (torchvision name) in TF.js layout. */
  variable(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`no tensor named ${name} in resnet18`);
    return v;
  }

  has(name: string): boolean {
    return this.vars.has(name);
  }

  /** Names of the trainable parameters (weights, biases, batch-norm affine), in state-dict order. */
  parameterNames(): string[] {
    return this.tensors.filter((d) => isParameter(d.role)).map((d) => d.name);
  }

  /**
   * Logits [N, numClasses] for x [N, H, W, 3]. Batch norms of the stages in `trainStages` run in train mode (batch
   * statistics; running statistics updated); the others use their running statistics (PyTorch's eval mode).
   */
  forward(x: tf.Tensor4D, trainStages: ReadonlySet<Stage> = NO_TRAIN): tf.Tensor2D {
    this.assertAlive();
    return tf.tidy(() => this.head(this.features(x, trainStages)));
  }

  /**
   * The backbone: the globally average-pooled output of layer4, [N, 512] for x [N, H, W, 3] (the input of `fc`).
   * `trainStages` as in `forward`; with none, the backbone is a fixed per-sample function of its input (what the
   * head-only feature cache, train/feature-cache.ts, relies on).
   */
  features(x: tf.Tensor4D, trainStages: ReadonlySet<Stage> = NO_TRAIN): tf.Tensor2D {
    this.assertAlive();
    return tf.tidy(() => tf.mean(this.stages(x, 'stem', 'fc', trainStages), [1, 2]) as tf.Tensor2D);
  }

  /**
   * The activations entering `stage` (NHWC; for 'fc', the pooled features [N, 512]) with every earlier stage in eval
   * mode: a fixed per-sample function of x, what the partial fine-tuning cache stores (train/feature-cache.ts).
   */
  prefix(x: tf.Tensor4D, stage: Stage): tf.Tensor {
    this.assertAlive();
    if (stage === 'fc') return this.features(x);
    return tf.tidy(() => this.stages(x, 'stem', stage, NO_TRAIN));
  }

  /** Logits from the activations entering `stage` (prefix's output): the stages from `stage` on, then the head. */
  forwardFrom(h: tf.Tensor, stage: Stage, trainStages: ReadonlySet<Stage> = NO_TRAIN): tf.Tensor2D {
    this.assertAlive();
    if (stage === 'fc') return this.head(h as tf.Tensor2D);
    return tf.tidy(() =>
      this.head(tf.mean(this.stages(h as tf.Tensor4D, stage, 'fc', trainStages), [1, 2]) as tf.Tensor2D),
    );
  }

  /** Runs the backbone stages in [from, to) of stem, layer1..4 ('fc' = to the end, before pooling). */
  private stages(x: tf.Tensor4D, from: Stage, to: Stage, trainStages: ReadonlySet<Stage>): tf.Tensor4D {
    const order: Stage[] = [...BACKBONE_STAGES, 'fc'];
    const [a, b] = [order.indexOf(from), order.indexOf(to)];
    const runs = (stage: Stage) => {
      const i = order.indexOf(stage);
      return i >= a && i < b;
    };
    let h = x;
    if (runs('stem')) {
      h = this.convBn(h, { weight: 'conv1.weight', bn: 'bn1', stride: 2, pad: 3 }, trainStages.has('stem'), true);
      h = tf.maxPool(h, 3, 2, pad4(1)) as tf.Tensor4D;
    }
    for (const block of this.blocks) {
      if (!runs(block.stage)) continue;
      const train = trainStages.has(block.stage);
      const out = this.convBn(h, block.conv1, train, true);
      const identity = block.downsample ? this.convBn(h, block.downsample, train) : h;
      h = this.convBn(out, block.conv2, train, true, identity);
    }
    return h;
  }

  /** The classifier: features [N, 512] -> logits [N, numClasses]. */
  head(features: tf.Tensor2D): tf.Tensor2D {
    return tf.add(tf.matMul(features, this.variable('fc.weight') as tf.Tensor2D), this.variable('fc.bias'));
  }

  /**
   * conv → batch norm (→ + residual) (→ ReLU when `relu`). In train mode the batch norm fuses the ReLU where the backend
   * has the kernel (no residual). In eval mode with the native kernels the batch norm is folded into the convolution
   * (w·γ/σ, β − μ·γ/σ, cached until a variable changes) and bias, residual and ReLU are applied in the same pass.
   */
  private convBn(x: tf.Tensor4D, c: ConvDesc, train: boolean, relu = false, residual?: tf.Tensor4D): tf.Tensor4D {
    const w = this.variable(c.weight) as tf.Tensor4D;
    const pad = c.pad === 0 ? 'valid' : pad4(c.pad);
    const p: BatchNormParams = {
      weight: this.variable(`${c.bn}.weight`) as tf.Tensor1D,
      bias: this.variable(`${c.bn}.bias`) as tf.Tensor1D,
      runningMean: this.variable(`${c.bn}.running_mean`),
      runningVar: this.variable(`${c.bn}.running_var`),
    };
    if (!train && tf.getKernel(CONV_BIAS_ACT_KERNEL, tf.getBackend())) {
      const f = this.folded(c, w, p);
      const inputs: tf.NamedTensorMap = { x, filter: f.w, bias: f.b, ...(residual ? { residual } : {}) };
      return tf
        .engine()
        .runKernel(CONV_BIAS_ACT_KERNEL, inputs, { strides: c.stride, pad, relu } as never) as tf.Tensor4D;
    }
    const y = tf.conv2d(x, w, c.stride, pad);
    let out: tf.Tensor4D;
    if (!train) out = batchNormEval(y, p);
    else {
      this.numBatchesTracked.set(c.bn, (this.numBatchesTracked.get(c.bn) ?? 0) + 1);
      // batch norm, + residual, ReLU: one op (fused where the backend has the kernels)
      return batchNormTrain(y, p, relu, residual);
    }
    if (residual) out = tf.add(out, residual) as tf.Tensor4D;
    return relu ? (tf.relu(out) as tf.Tensor4D) : out;
  }

  /** The eval-mode batch norm of `c` folded into its convolution, recomputed when any of the five variables changed. */
  private folded(c: ConvDesc, w: tf.Tensor4D, p: BatchNormParams): { w: tf.Tensor4D; b: tf.Tensor1D; key: number } {
    const sources = [w, p.weight, p.bias, p.runningMean, p.runningVar].map((t) => t.dataId);
    const hit = this.foldCache.get(c.weight);
    if (hit?.sources.every((id, i) => id === sources[i])) return hit;
    if (hit) tf.dispose([hit.w, hit.b]);
    const [fw, fb] = tf.tidy(() => {
      const scale = tf.mul(p.weight, tf.rsqrt(tf.add(p.runningVar, BN_EPS)));
      return [tf.mul(w, scale) as tf.Tensor4D, tf.sub(p.bias, tf.mul(p.runningMean, scale)) as tf.Tensor1D];
    });
    // A process-wide key for these exact values: native kernels keep their own layout of them under it.
    const entry = { sources, w: tf.keep(fw!), b: tf.keep(fb!), key: ++foldKeys };
    this.foldCache.set(c.weight, entry);
    return entry;
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error('model was disposed');
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    for (const f of this.foldCache.values()) tf.dispose([f.w, f.b]);
    this.foldCache.clear();
  }
}

/** `layer1.0.bn1.weight` -> `layer1.0.bn1` */
export function bnPrefix(tensorName: string): string {
  return tensorName.slice(0, tensorName.lastIndexOf('.'));
}
