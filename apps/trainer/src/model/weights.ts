/**
 * Moving weights between the model (TF.js layouts) and PyTorch state dicts (torchvision names, PyTorch layouts:
 * conv OIHW <-> HWIO, linear [out, in] <-> [in, out]), and to/from safetensors files.
 */
import * as tf from '@tensorflow/tfjs-core';
import { FEATURES, tfShape } from './architecture';
import { linearHeadInit } from './init';
import { tfToTorch, torchToTf } from './layout';
import type { ResNet18 } from './resnet18';
import { parseSafetensors, serializeSafetensors, toFloat32, type WritableTensor } from './safetensors';
import { numel, type StateDict, sameShape } from './state-dict';

/** The weights do not fit the model (a user error: wrong file, wrong architecture). */
export class WeightsError extends Error {
  override readonly name = 'WeightsError';
}

export interface LoadReport {
  /** True when the file's fc did not match numClasses and a fresh head was initialised instead. */
  headReset: boolean;
  /** Names in the file that the model does not use (num_batches_tracked is consumed, not listed). */
  unexpected: string[];
}

export interface LoadOptions {
  /** When the file's fc shape differs from the model's, initialise a fresh head with this seed instead of failing. */
  resetMismatchedHead?: { seed: number };
  /** num_batches_tracked values read from the file, by batch-norm prefix. */
  numBatchesTracked?: Map<string, number>;
}

/** Loads a PyTorch-layout state dict into the model. Every model tensor must be present with the right shape. */
export function loadStateDict(model: ResNet18, dict: StateDict, opts: LoadOptions = {}): LoadReport {
  let source = dict;
  let headReset = false;
  const fcW = dict.get('fc.weight');
  const fcB = dict.get('fc.bias');
  const wantFc = [model.numClasses, FEATURES];
  if (!fcW || !fcB || !sameShape(fcW.shape, wantFc) || !sameShape(fcB.shape, [model.numClasses])) {
    if (!opts.resetMismatchedHead) {
      throw new WeightsError(
        `fc does not match ${model.numClasses} classes: fc.weight is ${fcW ? `[${fcW.shape}]` : 'missing'}, expected [${wantFc}]`,
      );
    }
    source = new Map(dict);
    for (const [k, v] of linearHeadInit(model.numClasses, FEATURES, opts.resetMismatchedHead.seed)) source.set(k, v);
    headReset = true;
  }
  const problems: string[] = [];
  for (const desc of model.tensors) {
    const t = source.get(desc.name);
    if (!t) problems.push(`missing ${desc.name}`);
    else if (!sameShape(t.shape, desc.torchShape))
      problems.push(`${desc.name} has shape [${t.shape}], expected [${desc.torchShape}]`);
  }
  if (problems.length > 0)
    throw new WeightsError(
      `weights do not fit resnet18: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? '; …' : ''}`,
    );
  for (const desc of model.tensors) {
    const t = source.get(desc.name)!;
    const data = torchToTf(desc.role, t.data, desc.torchShape);
    tf.tidy(() => model.variable(desc.name).assign(tf.tensor(data, tfShape(desc), 'float32')));
  }
  for (const key of model.numBatchesTracked.keys())
    model.numBatchesTracked.set(key, opts.numBatchesTracked?.get(key) ?? 0);
  const known = new Set(model.tensors.map((d) => d.name));
  const unexpected = [...dict.keys()].filter((k) => !known.has(k) && !k.endsWith('.num_batches_tracked'));
  return { headReset, unexpected };
}

/**
 * The model's state in PyTorch layouts (every tensor but num_batches_tracked). Read asynchronously: the webgpu
 * backend cannot read a tensor synchronously in Node (its readSync needs OffscreenCanvas).
 */
export async function exportStateDict(model: ResNet18): Promise<StateDict> {
  const dict: StateDict = new Map();
  for (const desc of model.tensors) {
    const data = (await model.variable(desc.name).data()) as Float32Array;
    dict.set(desc.name, {
      shape: [...desc.torchShape],
      data: new Float32Array(tfToTorch(desc.role, data, desc.torchShape)),
    });
  }
  return dict;
}

/** The model as a torchvision-compatible safetensors file (F32 tensors + I64 num_batches_tracked). */
export async function modelToSafetensors(model: ResNet18, metadata?: Record<string, string>): Promise<Uint8Array> {
  const dict = await exportStateDict(model);
  const out: WritableTensor[] = [];
  for (const desc of model.tensors) {
    const t = dict.get(desc.name)!;
    out.push({ name: desc.name, dtype: 'F32', shape: t.shape, data: t.data });
    if (desc.role === 'bn.running_var') {
      const prefix = desc.name.slice(0, -'.running_var'.length);
      const count = BigInt(model.numBatchesTracked.get(prefix) ?? 0);
      out.push({ name: `${prefix}.num_batches_tracked`, dtype: 'I64', shape: [], data: BigInt64Array.of(count) });
    }
  }
  return serializeSafetensors(out, {
    format: 'pt',
    arch: 'resnet18',
    num_classes: String(model.numClasses),
    ...metadata,
  });
}

export interface ParsedWeights {
  dict: StateDict;
  numBatchesTracked: Map<string, number>;
}

/** Reads a safetensors file of torchvision-named tensors (any float dtype) into a float32 state dict. */
export function stateDictFromSafetensors(bytes: Uint8Array): ParsedWeights {
  const file = parseSafetensors(bytes);
  const dict: StateDict = new Map();
  const numBatchesTracked = new Map<string, number>();
  for (const [name, raw] of file.tensors) {
    const data = toFloat32(raw);
    if (name.endsWith('.num_batches_tracked')) {
      numBatchesTracked.set(name.slice(0, -'.num_batches_tracked'.length), data[0] ?? 0);
      continue;
    }
    if (data.length !== numel(raw.shape)) throw new WeightsError(`${name}: bad size`);
    dict.set(name, { shape: raw.shape, data });
  }
  return { dict, numBatchesTracked };
}

/** Loads a safetensors file into the model. */
export function loadSafetensors(
  model: ResNet18,
  bytes: Uint8Array,
  opts: Omit<LoadOptions, 'numBatchesTracked'> = {},
): LoadReport {
  const { dict, numBatchesTracked } = stateDictFromSafetensors(bytes);
  return loadStateDict(model, dict, { ...opts, numBatchesTracked });
}
