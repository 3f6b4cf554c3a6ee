/**
 * Checkpoints: everything needed to continue a run exactly where it stopped.
 *
 * `layout.checkpointPrefix(jobId, attempt, epoch)` holds
 *   weights.safetensors    the model (torchvision names, PyTorch layouts, running stats, num_batches_tracked)
 *   optimizer.safetensors  the optimizer's per-parameter state (momentum buffers / Adam moments), metadata {type, step}
 *   state.json             CheckpointState: epochs done, metrics history, partial-epoch position, rng description
 * and only after all three are written, `layout.latestCheckpoint(jobId)` is overwritten with {attempt, epoch, prefix},
 * so a torn checkpoint is never resumed from. A stop in the middle of an epoch (SIGTERM) writes to
 * `<checkpointPrefix(jobId, attempt, e)>step-<k>/` with `partial` set; resuming replays epoch e's batches (which
 * depend only on (seed, epoch)) and skips the first k.
 */
import { layout } from '@gpulab/storage';
import { getJson, type ObjectStore, putJson } from '../io/object-store';
import type { ResNet18 } from '../model/resnet18';
import { parseSafetensors, serializeSafetensors, toFloat32 } from '../model/safetensors';
import type { StateDict } from '../model/state-dict';
import { loadSafetensors, modelToSafetensors } from '../model/weights';
import type { EpochMetrics } from './metrics';
import type { Optimizer } from './optimizers';

export const CHECKPOINT_FILES = {
  weights: 'weights.safetensors',
  optimizer: 'optimizer.safetensors',
  state: 'state.json',
} as const;

export interface PartialEpoch {
  /** The epoch in progress (1-based). */
  epoch: number;
  /** Train batches already consumed in it. */
  step: number;
  /** Σ loss·n and Σ n over those batches. */
  lossSum: number;
  samples: number;
  seconds: number;
}

export interface CheckpointState {
  version: 1;
  jobId: string;
  attempt: number;
  /** Epochs completed. */
  epoch: number;
  partial: PartialEpoch | null;
  history: EpochMetrics[];
  classes: string[];
  /** Randomness is counter-based: every draw is a function of (seed, epoch, item), so there is no generator state. */
  rng: { seed: number; scheme: 'counter(seed, epoch, index)'; nextEpoch: number };
  optimizer: { type: string; step: number };
  /** sha256 of the job spec the run started with. */
  specDigest: string;
}

export interface LatestPointer {
  attempt: number;
  /** Epochs completed (for a partial checkpoint: the epoch in progress, with `step` set). */
  epoch: number;
  prefix: string;
  step?: number;
}

export function checkpointPrefixFor(jobId: string, attempt: number, epoch: number, partialStep?: number): string {
  const base = layout.checkpointPrefix(jobId, attempt, epoch);
  return partialStep === undefined ? base : `${base}step-${partialStep}/`;
}

async function optimizerToSafetensors(optimizer: Optimizer): Promise<Uint8Array> {
  const state = await optimizer.exportState();
  const tensors = [...state.tensors].map(([name, t]) => ({
    name,
    dtype: 'F32' as const,
    shape: t.shape,
    data: t.data,
  }));
  return serializeSafetensors(tensors, { type: optimizer.type, step: String(state.step) });
}

function optimizerFromSafetensors(bytes: Uint8Array): { type: string; step: number; tensors: StateDict } {
  const file = parseSafetensors(bytes);
  const tensors: StateDict = new Map();
  for (const [name, raw] of file.tensors) tensors.set(name, { shape: raw.shape, data: toFloat32(raw) });
  return { type: file.metadata['type'] ?? 'unknown', step: Number(file.metadata['step'] ?? 0), tensors };
}

export interface WrittenCheckpoint {
  prefix: string;
  bytes: number;
}

/** Writes a checkpoint, then points latest.json at it. */
export async function writeCheckpoint(
  store: ObjectStore,
  opts: { model: ResNet18; optimizer: Optimizer; state: CheckpointState },
): Promise<WrittenCheckpoint> {
  const { state } = opts;
  const prefix = checkpointPrefixFor(
    state.jobId,
    state.attempt,
    state.partial?.epoch ?? state.epoch,
    state.partial?.step,
  );
  const weights = await modelToSafetensors(opts.model);
  const optimizer = await optimizerToSafetensors(opts.optimizer);
  await store.put(prefix + CHECKPOINT_FILES.weights, weights);
  await store.put(prefix + CHECKPOINT_FILES.optimizer, optimizer);
  const stateBytes = await putJson(store, prefix + CHECKPOINT_FILES.state, state);
  const pointer: LatestPointer = {
    attempt: state.attempt,
    epoch: state.partial?.epoch ?? state.epoch,
    prefix,
    ...(state.partial ? { step: state.partial.step } : {}),
  };
  await putJson(store, layout.latestCheckpoint(state.jobId), pointer);
  return { prefix, bytes: weights.byteLength + optimizer.byteLength + stateBytes };
}

export async function readLatest(store: ObjectStore, jobId: string): Promise<LatestPointer | null> {
  return getJson<LatestPointer>(store, layout.latestCheckpoint(jobId));
}

/** A checkpoint that latest.json points at is missing or unreadable: storage trouble (retryable). */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

/** Loads the checkpoint at `pointer` into the model and optimizer; returns its state. */
export async function restoreCheckpoint(
  store: ObjectStore,
  pointer: LatestPointer,
  model: ResNet18,
  optimizer: Optimizer,
): Promise<CheckpointState> {
  const [weights, opt, state] = await Promise.all([
    store.get(pointer.prefix + CHECKPOINT_FILES.weights),
    store.get(pointer.prefix + CHECKPOINT_FILES.optimizer),
    getJson<CheckpointState>(store, pointer.prefix + CHECKPOINT_FILES.state),
  ]);
  if (!weights || !opt || !state)
    throw new CheckpointError(`checkpoint ${store.location}/${pointer.prefix} is incomplete`);
  if (state.version !== 1) throw new CheckpointError(`checkpoint version ${state.version} is not supported`);
  try {
    loadSafetensors(model, weights);
  } catch (e) {
    throw new CheckpointError(`checkpoint ${pointer.prefix} does not fit the model: ${(e as Error).message}`);
  }
  const o = optimizerFromSafetensors(opt);
  if (o.type !== optimizer.type)
    throw new CheckpointError(`checkpoint optimizer is ${o.type}, the job's is ${optimizer.type}`);
  optimizer.importState({ tensors: o.tensors, step: o.step });
  return state;
}
