/**
 * Loading a trained model back from its directory (layout.modelPrefix: model.json, labels.json,
 * preprocessing.json, weights.safetensors), in S3 or on the local disk, and classifying images with it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { preprocessForInference } from '../data';
import { getJson, type ObjectStore } from '../io/object-store';
import { ResNet18 } from '../model/resnet18';
import { loadSafetensors } from '../model/weights';
import { MODEL_FILES, type ModelJson, type PreprocessingJson } from '../train/artifacts';

export interface ModelBundle {
  model: ResNet18;
  labels: string[];
  imageSize: number;
  preprocessing: PreprocessingJson;
}

export async function loadModelBundle(store: ObjectStore, prefix: string): Promise<ModelBundle> {
  const p = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
  const [meta, labels, preprocessing, weights] = await Promise.all([
    getJson<ModelJson>(store, p + MODEL_FILES.model),
    getJson<string[]>(store, p + MODEL_FILES.labels),
    getJson<PreprocessingJson>(store, p + MODEL_FILES.preprocessing),
    store.get(p + MODEL_FILES.weights),
  ]);
  if (!meta || !labels || !preprocessing || !weights)
    throw new Error(
      `${store.location}/${p} is not a complete model directory (need ${Object.values(MODEL_FILES).join(', ')})`,
    );
  if (meta.arch !== 'resnet18') throw new Error(`unsupported arch ${meta.arch}`);
  if (labels.length !== meta.numClasses)
    throw new Error(`labels.json has ${labels.length} labels for ${meta.numClasses} classes`);
  const model = new ResNet18(meta.numClasses);
  loadSafetensors(model, weights);
  return { model, labels, imageSize: preprocessing.crop, preprocessing };
}

export interface Prediction {
  label: string;
  index: number;
  probability: number;
}

/** Top-k classes of one encoded image (JPEG/PNG/WebP…), with the model's val preprocessing. */
export async function classify(bundle: ModelBundle, image: Uint8Array, topK: number): Promise<Prediction[]> {
  const { preprocessing: pp } = bundle;
  if (pp.resize !== Math.round((pp.crop * 256) / 224))
    throw new Error(`preprocessing resize ${pp.resize} is not the trainer's round(crop·256/224)`);
  const x = await preprocessForInference(image, bundle.imageSize);
  const probsT = tf.tidy(() =>
    tf.softmax(bundle.model.forward(tf.tensor4d(x, [1, bundle.imageSize, bundle.imageSize, 3]))),
  );
  const probs = (await probsT.data()) as Float32Array; // async: webgpu cannot read synchronously in Node
  probsT.dispose();
  return [...probs]
    .map((probability, index) => ({ label: bundle.labels[index] ?? String(index), index, probability }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, topK);
}
