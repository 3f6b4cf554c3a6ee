/**
 * ResNet18 in TensorFlow.js's own LayersModel format, so `tf.loadLayersModel('…/tfjs/model.json')` (from
 * @tensorflow/tfjs or @tensorflow/tfjs-layers) runs the trained model in a browser or Node without any gpulab code.
 *
 * The topology is the Keras-style functional-model JSON that tfjs-layers writes itself (`model.toJSON()`,
 * `model.save(...)`): class_name "Model", config.layers with inbound_nodes, input_layers/output_layers, each layer's
 * full config as tfjs-layers 4.22 serialises it. It reproduces torchvision's `resnet18` exactly, on NHWC input
 * (batch, height, width, RGB channels; any height and width):
 *   - PyTorch's symmetric padding is an explicit ZeroPadding2D followed by a 'valid' Conv2D without bias (Keras'
 *     'same' pads asymmetrically for even inputs at stride 2 and would not match): conv1 7x7/2 pad 3, 3x3 convs pad 1,
 *     1x1/2 downsample convs pad 0 (no padding layer).
 *   - BatchNormalization (epsilon 1e-5, as nn.BatchNorm2d) with the running mean/variance as moving mean/variance;
 *     the momentum only matters when training, and is tfjs-layers' default.
 *   - The stem's max pool (3x3/2, pad 1) is ZeroPadding2D(1) + MaxPooling2D(3, 2, 'valid'). PyTorch pads max pooling
 *     with -inf, not 0; zero padding is equivalent here because the pool's input comes straight from a ReLU, so every
 *     value is >= 0 and a padded 0 never exceeds the largest real value in a window (each window holds at least one
 *     real value).
 *   - BasicBlocks: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut), the shortcut being x or downsample.1(downsample.0(x)).
 *   - GlobalAveragePooling2D, then Dense(numClasses) giving logits (no softmax, as torchvision).
 *
 * Layer names are torchvision's module names (`conv1`, `bn1`, `layer2.0.downsample.0`, `fc`, …; padding, ReLU and
 * Add layers get `_pad` / `relu` / `add` names beside them), so the weight `layer1.0.conv1/kernel` is torchvision's
 * `layer1.0.conv1.weight`. Weight values come from a PyTorch-layout state dict (the same tensors as
 * weights.safetensors) converted to Keras layouts: conv kernels HWIO, dense kernel [in, out], batch norm
 * gamma/beta/moving_mean/moving_variance = weight/bias/running_mean/running_var.
 *
 * Output: `model.json` ({ format: 'layers-model', generatedBy, convertedBy, modelTopology, weightsManifest }) and one
 * weights file of little-endian float32 values, in the manifest's order, which is the order tfjs-layers itself saves
 * such a model in (every trainable weight in layer order, then every non-trainable one).
 */
import type * as tf from '@tensorflow/tfjs-core';
import { FEATURES, resnet18Blocks, resnet18Tensors } from './architecture';
import { oihwToHwio, transpose2d } from './layout';
import type { ResNet18 } from './resnet18';
import type { StateDict } from './state-dict';
import { sameShape } from './state-dict';
import { exportStateDict, WeightsError } from './weights';

export const TFJS_FILES = {
  model: 'model.json',
  weights: 'group1-shard1of1.bin',
} as const;

/** The tfjs-layers version whose serialisation this file reproduces (and that the tests load the export with). */
export const TFJS_LAYERS_VERSION = '4.22.0';

export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32';
}

/** The contents of a TF.js `model.json` for a layers model (a `tf.io.ModelJSON`). */
export interface TfjsModelJson extends tf.io.ModelJSON {
  format: 'layers-model';
  generatedBy: string;
  convertedBy: 'gpulab';
  modelTopology: KerasModelTopology;
  weightsManifest: { paths: string[]; weights: TfjsWeightSpec[] }[];
}

export interface TfjsExport {
  modelJson: TfjsModelJson;
  /** The weights file (TFJS_FILES.weights): the manifest's tensors, float32 little-endian, back to back. */
  weightData: Uint8Array;
}

/** `[layer name, node index, tensor index, kwargs]`, as Keras writes an inbound tensor reference. */
type InboundRef = [string, number, number, Record<string, never>];

interface KerasLayer {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: InboundRef[][];
}

export interface KerasModelTopology {
  class_name: 'Model';
  config: {
    name: string;
    layers: KerasLayer[];
    input_layers: [string, number, number][];
    output_layers: [string, number, number][];
  };
  keras_version: string;
  backend: 'tensor_flow.js';
}

const glorotNormal = () => ({
  class_name: 'VarianceScaling',
  config: { scale: 1, mode: 'fan_avg', distribution: 'normal', seed: null },
});
const zeros = () => ({ class_name: 'Zeros', config: {} });
const ones = () => ({ class_name: 'Ones', config: {} });

type TensorSource = (torchName: string, expectedShape: number[]) => Float32Array;

/** Builds the layer list and the weights (in Keras layouts) together, so names, shapes and data cannot drift apart. */
class Builder {
  readonly layers: KerasLayer[] = [];
  readonly trainable: { spec: TfjsWeightSpec; data: Float32Array }[] = [];
  readonly nonTrainable: { spec: TfjsWeightSpec; data: Float32Array }[] = [];

  constructor(private readonly source: TensorSource) {}

  private layer(name: string, className: string, config: Record<string, unknown>, inputs: string[]): string {
    this.layers.push({
      name,
      class_name: className,
      config: { ...config, name, ...(className === 'InputLayer' ? {} : { trainable: true }) },
      inbound_nodes: inputs.length === 0 ? [] : [inputs.map((i): InboundRef => [i, 0, 0, {}])],
    });
    return name;
  }

  private weight(list: 'trainable' | 'nonTrainable', name: string, shape: number[], data: Float32Array): void {
    this[list].push({ spec: { name, shape, dtype: 'float32' }, data });
  }

  input(name: string): string {
    return this.layer(
      name,
      'InputLayer',
      { batch_input_shape: [null, null, null, 3], dtype: 'float32', sparse: false },
      [],
    );
  }

  zeroPad(name: string, pad: number, x: string): string {
    return this.layer(
      name,
      'ZeroPadding2D',
      {
        padding: [
          [pad, pad],
          [pad, pad],
        ],
        data_format: 'channels_last',
      },
      [x],
    );
  }

  /** Conv2D named after the torchvision module `module` (weight `${module}.weight`), preceded by its padding. */
  conv(module: string, shape: [number, number, number, number], stride: number, pad: number, x: string): string {
    const [out, inC, kh, kw] = shape;
    const input = pad > 0 ? this.zeroPad(`${module}_pad`, pad, x) : x;
    const name = this.layer(
      module,
      'Conv2D',
      {
        filters: out,
        kernel_initializer: glorotNormal(),
        kernel_regularizer: null,
        kernel_constraint: null,
        kernel_size: [kh, kw],
        strides: [stride, stride],
        padding: 'valid',
        data_format: 'channels_last',
        dilation_rate: [1, 1],
        activation: 'linear',
        use_bias: false,
        bias_initializer: zeros(),
        bias_regularizer: null,
        activity_regularizer: null,
        bias_constraint: null,
      },
      [input],
    );
    this.weight(
      'trainable',
      `${module}/kernel`,
      [kh, kw, inC, out],
      oihwToHwio(this.source(`${module}.weight`, shape), shape),
    );
    return name;
  }

  /** BatchNormalization named after the torchvision module `module` (`${module}.weight`, `.bias`, `.running_*`). */
  bn(module: string, channels: number, x: string): string {
    const name = this.layer(
      module,
      'BatchNormalization',
      {
        axis: -1,
        momentum: 0.99,
        epsilon: 1e-5,
        center: true,
        scale: true,
        beta_initializer: zeros(),
        gamma_initializer: ones(),
        moving_mean_initializer: zeros(),
        moving_variance_initializer: ones(),
        beta_regularizer: null,
        gamma_regularizer: null,
        beta_constraint: null,
        gamma_constraint: null,
      },
      [x],
    );
    const get = (suffix: string) => this.source(`${module}.${suffix}`, [channels]);
    this.weight('trainable', `${module}/gamma`, [channels], get('weight'));
    this.weight('trainable', `${module}/beta`, [channels], get('bias'));
    this.weight('nonTrainable', `${module}/moving_mean`, [channels], get('running_mean'));
    this.weight('nonTrainable', `${module}/moving_variance`, [channels], get('running_var'));
    return name;
  }

  relu(name: string, x: string): string {
    return this.layer(name, 'ReLU', { max_value: null }, [x]);
  }

  add(name: string, a: string, b: string): string {
    return this.layer(name, 'Add', {}, [a, b]);
  }

  maxPool(name: string, size: number, stride: number, x: string): string {
    return this.layer(
      name,
      'MaxPooling2D',
      { pool_size: [size, size], padding: 'valid', strides: [stride, stride], data_format: 'channels_last' },
      [x],
    );
  }

  globalAvgPool(name: string, x: string): string {
    return this.layer(name, 'GlobalAveragePooling2D', { data_format: 'channels_last' }, [x]);
  }

  dense(module: string, inF: number, units: number, x: string): string {
    const name = this.layer(
      module,
      'Dense',
      {
        units,
        activation: 'linear',
        use_bias: true,
        kernel_initializer: glorotNormal(),
        bias_initializer: zeros(),
        kernel_regularizer: null,
        bias_regularizer: null,
        activity_regularizer: null,
        kernel_constraint: null,
        bias_constraint: null,
      },
      [x],
    );
    const w = this.source(`${module}.weight`, [units, inF]);
    this.weight('trainable', `${module}/kernel`, [inF, units], transpose2d(w, units, inF));
    this.weight('trainable', `${module}/bias`, [units], this.source(`${module}.bias`, [units]));
    return name;
  }
}

/**
 * The TF.js LayersModel of torchvision's `resnet18(num_classes=N)` holding the weights of `dict` (torchvision names,
 * PyTorch layouts, as `exportStateDict` or `stateDictFromSafetensors` give; N is read from fc.weight). Every tensor
 * must be present with its torchvision shape; num_batches_tracked and unknown entries are ignored.
 */
export function exportTfjs(dict: StateDict, opts: { modelName?: string } = {}): TfjsExport {
  const fcW = dict.get('fc.weight');
  if (fcW?.shape.length !== 2 || fcW.shape[1] !== FEATURES)
    throw new WeightsError(`fc.weight is ${fcW ? `[${fcW.shape}]` : 'missing'}, expected [numClasses, ${FEATURES}]`);
  const numClasses = fcW.shape[0]!;
  const shapes = new Map(resnet18Tensors(numClasses).map((d) => [d.name, d.torchShape]));
  const shapeOf = (name: string) => shapes.get(name) as [number, number, number, number];
  const used = new Set<string>();
  const source: TensorSource = (name, expected) => {
    const want = shapes.get(name);
    if (!want || !sameShape(want, expected))
      throw new Error(`tfjs export: ${name} [${expected}] is not a resnet18 tensor`);
    const t = dict.get(name);
    if (!t) throw new WeightsError(`tfjs export: missing ${name}`);
    if (!sameShape(t.shape, expected) || t.data.length !== t.shape.reduce((a, b) => a * b, 1))
      throw new WeightsError(`tfjs export: ${name} has shape [${t.shape}], expected [${expected}]`);
    used.add(name);
    return t.data;
  };

  const b = new Builder(source);
  const input = b.input('input');
  let x = b.conv('conv1', [64, 3, 7, 7], 2, 3, input);
  x = b.bn('bn1', 64, x);
  x = b.relu('relu', x);
  // PyTorch pads max pooling with -inf; zeros are equivalent because x >= 0 after the ReLU (see the file comment).
  x = b.maxPool('maxpool', 3, 2, b.zeroPad('maxpool_pad', 1, x));
  for (const block of resnet18Blocks()) {
    const p = block.conv1.weight.slice(0, -'.conv1.weight'.length); // e.g. layer2.0
    const out = shapeOf(block.conv1.weight)[0];
    const ds = block.downsample;
    let y = b.conv(`${p}.conv1`, shapeOf(block.conv1.weight), block.conv1.stride, block.conv1.pad, x);
    y = b.bn(block.conv1.bn, out, y);
    y = b.relu(`${p}.relu1`, y);
    y = b.conv(`${p}.conv2`, shapeOf(block.conv2.weight), block.conv2.stride, block.conv2.pad, y);
    // Layers are listed in the order tfjs-layers lists (and saves) them: by depth from the output, so the
    // downsample conv sits beside conv2 and its batch norm beside bn2.
    let shortcut = ds ? b.conv(ds.weight.slice(0, -'.weight'.length), shapeOf(ds.weight), ds.stride, ds.pad, x) : x;
    y = b.bn(block.conv2.bn, out, y);
    if (ds) shortcut = b.bn(ds.bn, out, shortcut);
    x = b.relu(`${p}.relu`, b.add(`${p}.add`, y, shortcut));
  }
  x = b.globalAvgPool('avgpool', x);
  const output = b.dense('fc', FEATURES, numClasses, x);

  const missing = [...shapes.keys()].filter((n) => !used.has(n));
  if (missing.length > 0) throw new Error(`tfjs export: unused resnet18 tensors ${missing.join(', ')}`);

  const weights = [...b.trainable, ...b.nonTrainable];
  const total = weights.reduce((n, w) => n + w.data.length, 0);
  const all = new Float32Array(total);
  let offset = 0;
  for (const w of weights) {
    all.set(w.data, offset);
    offset += w.data.length;
  }
  const weightData = new Uint8Array(all.buffer, all.byteOffset, all.byteLength);
  if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) throw new Error('tfjs export needs a little-endian host');

  const modelTopology: KerasModelTopology = {
    class_name: 'Model',
    config: {
      name: opts.modelName ?? 'resnet18',
      layers: b.layers,
      input_layers: [[input, 0, 0]],
      output_layers: [[output, 0, 0]],
    },
    keras_version: `tfjs-layers ${TFJS_LAYERS_VERSION}`,
    backend: 'tensor_flow.js',
  };
  return {
    modelJson: {
      format: 'layers-model',
      generatedBy: `gpulab trainer: torchvision resnet18, ${numClasses} classes, NHWC input`,
      convertedBy: 'gpulab',
      modelTopology,
      weightsManifest: [{ paths: [TFJS_FILES.weights], weights: weights.map((w) => w.spec) }],
    },
    weightData,
  };
}

/** `exportTfjs` of the model's current weights. */
export async function modelToTfjs(model: ResNet18, opts: { modelName?: string } = {}): Promise<TfjsExport> {
  return exportTfjs(await exportStateDict(model), opts);
}
