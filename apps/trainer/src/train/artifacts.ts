/**
 * The finished job's artifacts:
 *   layout.modelPrefix(jobId): weights.safetensors (the best epoch's weights, torchvision names and PyTorch layouts:
 *     `resnet18(num_classes=N).load_state_dict(safetensors.torch.load_file(...))` works), model.json,
 *     labels.json (class names, index = label), preprocessing.json (what to do to an image before the model);
 *     tfjs/model.json + tfjs/group1-shard1of1.bin: the same weights as a TensorFlow.js LayersModel (Keras-style
 *     topology, conv HWIO / dense [in, out] layouts; see model/tfjs-export.ts), so
 *     `tf.loadLayersModel('…/tfjs/model.json')` runs it in a browser or Node with no gpulab code. It takes NHWC input
 *     (preprocessed as preprocessing.json says) and returns logits.
 *   layout.metrics(jobId): metrics.json (every epoch's metrics, the best epoch, why training ended)
 */
import type { JobSpec } from '@gpulab/core';
import { layout } from '@gpulab/storage';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data';
import type { EventSink } from '../events';
import { type ObjectStore, putJson } from '../io/object-store';
import type { ResNet18 } from '../model/resnet18';
import { exportTfjs, TFJS_FILES } from '../model/tfjs-export';
import { modelToSafetensors, stateDictFromSafetensors } from '../model/weights';
import { CHECKPOINT_FILES, CheckpointError } from './checkpoint';
import type { TrainingOutcome } from './loop';

export const MODEL_FILES = {
  weights: 'weights.safetensors',
  model: 'model.json',
  labels: 'labels.json',
  preprocessing: 'preprocessing.json',
} as const;

/** The TensorFlow.js LayersModel (model/tfjs-export.ts), beside MODEL_FILES; predict does not need it. */
export const TFJS_MODEL_FILES = {
  model: `tfjs/${TFJS_FILES.model}`,
  weights: `tfjs/${TFJS_FILES.weights}`,
} as const;

export interface ModelJson {
  format: 'gpulab.model/v1';
  arch: 'resnet18';
  numClasses: number;
  imageSize: number;
  weights: string;
  /** Tensor layout of the weights file. */
  layout: 'pytorch';
  tensors: { name: string; shape: number[] }[];
  bestEpoch: number | null;
  backend: string;
}

export interface PreprocessingJson {
  /** Resize the shorter side to `resize` (bilinear), then center-crop `crop` × `crop`. */
  resize: number;
  crop: number;
  interpolation: 'bilinear';
  /** RGB values scaled to [0, 1], then (x − mean) / std per channel. */
  scale: number;
  mean: number[];
  std: number[];
  channels: 'RGB';
}

export function preprocessingFor(imageSize: number): PreprocessingJson {
  return {
    resize: Math.round((imageSize * 256) / 224),
    crop: imageSize,
    interpolation: 'bilinear',
    scale: 1 / 255,
    mean: [...IMAGENET_MEAN],
    std: [...IMAGENET_STD],
    channels: 'RGB',
  };
}

export interface ArtifactContext {
  jobId: string;
  spec: JobSpec;
  classes: string[];
  backend: string;
  model: ResNet18;
  outcome: TrainingOutcome;
  store: ObjectStore;
  emit: EventSink;
}

/** Writes the model directory and metrics.json; returns the keys written. */
export async function writeArtifacts(ctx: ArtifactContext): Promise<string[]> {
  const { store, jobId, outcome, model } = ctx;
  const prefix = layout.modelPrefix(jobId);
  const best = outcome.best;
  // The best epoch's weights are its checkpoint's (possibly from an earlier attempt); without epochs, the model's.
  let weights: Uint8Array;
  if (best) {
    const bytes = await store.get(best.checkpoint + CHECKPOINT_FILES.weights);
    if (!bytes) throw new CheckpointError(`best checkpoint ${best.checkpoint} has no weights`);
    weights = bytes;
  } else {
    weights = await modelToSafetensors(model);
  }
  const written: string[] = [];
  const put = async (key: string, kind: 'model' | 'metrics', value: Uint8Array | object) => {
    let bytes: number;
    if (value instanceof Uint8Array) {
      await store.put(key, value);
      bytes = value.byteLength;
    } else {
      bytes = await putJson(store, key, value);
    }
    written.push(key);
    await ctx.emit({ type: 'artifact', kind, key, bytes });
  };
  const modelJson: ModelJson = {
    format: 'gpulab.model/v1',
    arch: 'resnet18',
    numClasses: model.numClasses,
    imageSize: ctx.spec.imageSize,
    weights: MODEL_FILES.weights,
    layout: 'pytorch',
    tensors: model.tensors.map((d) => ({ name: d.name, shape: [...d.torchShape] })),
    bestEpoch: best?.epoch ?? null,
    backend: ctx.backend,
  };
  await put(prefix + MODEL_FILES.weights, 'model', weights);
  await put(prefix + MODEL_FILES.labels, 'model', ctx.classes);
  await put(prefix + MODEL_FILES.preprocessing, 'model', preprocessingFor(ctx.spec.imageSize));
  await put(prefix + MODEL_FILES.model, 'model', modelJson);
  // The TF.js export is made from the very tensors of weights.safetensors (the best epoch's, not the model's).
  const tfjs = exportTfjs(stateDictFromSafetensors(weights).dict);
  await put(prefix + TFJS_MODEL_FILES.weights, 'model', tfjs.weightData);
  await put(prefix + TFJS_MODEL_FILES.model, 'model', tfjs.modelJson);
  await put(layout.metrics(jobId), 'metrics', {
    jobId,
    classes: ctx.classes,
    epochs: outcome.history,
    bestEpoch: best?.epoch ?? null,
    bestValAcc: best?.valAcc ?? null,
    bestValLoss: best?.valLoss ?? null,
    stoppedEarly: outcome.stoppedEarly,
    epochsPlanned: ctx.spec.epochs,
    backend: ctx.backend,
  });
  return written;
}
