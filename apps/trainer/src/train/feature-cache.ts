/**
 * Feature cache for head-only training (freeze.mode 'head').
 *
 * With only fc trainable, the backbone runs in eval mode (freeze.ts): its batch norms use running statistics that
 * no step changes, and no other backbone variable is ever updated. So the backbone is one fixed function F for the
 * whole run, applied to each sample independently, and a training step is
 *   loss = CE(fc(F(x)), y),  gradients for fc.weight, fc.bias only,
 * in which F(x) does not depend on anything the optimizer changes. Computing F(x) once per distinct input and reusing
 * it therefore gives the same steps as recomputing it: same batches in the same order, same features, same head
 * gradients, same updates. What a "distinct input" is comes from the data layer (Batch.views, data/batches.ts): the
 * view of image i in epoch e is a deterministic function of (seed, e, i), and without a random crop it does not
 * depend on e at all — only on (i, flip). Hence:
 *
 * - train, no RandomResizedCrop: at most two views per image (flip off/on). Each view's 512-d feature is computed
 *   the first time it appears in a batch and reused in every later epoch; only the missing samples of a batch go
 *   through the backbone. With flip off, epoch 1 computes everything and later epochs run the head only.
 * - train, RandomResizedCrop: each epoch's crops are new (view -1), so features are computed every epoch, in a
 *   backbone-only eval forward outside the gradient tape (nothing of the backbone is recorded or kept for backward).
 * - val: the same batches every epoch (index order, no randomness: batches.ts), all views deterministic. The first
 *   val pass stores each batch's features and labels; later epochs replay them without decoding or running the
 *   backbone, and only the head is evaluated.
 *
 * Exactness: the cached path evaluates the same float32 values as the uncached one except for one thing — a sample's
 * features may come from a backbone call on a different set of samples (a smaller batch of the missing ones, or an
 * earlier epoch's batch). Mathematically each sample's eval-mode features are independent of its batch mates; in
 * float32 a kernel may round differently with the batch size, so the two paths agree to rounding (the tests compare
 * per-epoch metrics to 1e-5), not necessarily bit for bit.
 *
 * Rows are computed for several consecutive batches at once (withTrainFeatures, and the first val pass: up to
 * FEATURE_GROUP_ROWS images per call of the frozen layers, which run several times faster per image in larger batches
 * at small sizes); the steps still take one batch each, in order.
 *
 * Memory: features are kept in JavaScript memory (2 KiB per view), up to `maxBytes` in total (default 1 GiB, about
 * 500,000 views); views beyond the budget are recomputed when they recur (still exact, just not cached), and a val
 * set that does not fit is recomputed every epoch. The cache lives for one process: a resumed run starts empty.
 *
 * Partial fine-tuning: the same argument holds for every stage before the first trainable one (they run in eval mode
 * and nothing updates them), so for a partial plan the cache stores the activations entering that stage
 * (ResNet18.prefix; at 224 px with layer4 training, 14×14×256 floats = 196 KiB per view instead of 2 KiB) and the step
 * runs the remaining stages from there (ResNet18.forwardFrom). cacheStage() picks the stage: 'fc' for head-only (the
 * pooled features), the first trainable stage for partial plans, none for full fine-tuning.
 */
import * as tf from '@tensorflow/tfjs-core';
import { BACKBONE_STAGES, type Stage } from '../model/architecture';
import type { ResNet18 } from '../model/resnet18';
import type { FreezePlan } from './freeze';
import { type Batch, type FeatureBatch, maxMicroBatch } from './step';

export const FEATURE_CACHE_DEFAULTS = { maxBytes: 1024 * 1024 * 1024 };

/**
 * Images whose missing rows go through the frozen layers in one call (withTrainFeatures, the first val pass). On this
 * repository's 2-core development machine (wasm + native kernels), eval at 32 px: 1,500–1,570 img/s in batches of 32,
 * 2,390–2,430 in 128, 2,690 in 256.
 */
export const FEATURE_GROUP_ROWS = 128;

/** Rows per slab: about 4 MiB of rows, at least one. */
const SLAB_BYTES = 4 * 1024 * 1024;

/** True when only the head (fc) trains and every backbone batch norm is in eval mode. */
export function isHeadOnly(plan: FreezePlan): boolean {
  return plan.trainStages.size === 0 && plan.trainable.every((name) => name.startsWith('fc.'));
}

/**
 * Where the cache cuts the network for `plan`: 'fc' (pooled features) for head-only, the first trainable backbone
 * stage for partial plans, null when the stem trains (nothing before it to cache).
 */
export function cacheStage(plan: FreezePlan): Stage | null {
  if (isHeadOnly(plan)) return 'fc';
  // freezePlan opens a suffix of the stages: everything before the first trainable one is frozen and in eval mode.
  const first = BACKBONE_STAGES.find((s) => plan.trainStages.has(s));
  return first && first !== 'stem' ? first : null;
}

export interface FeatureCacheStats {
  /** Samples whose features were computed by the backbone. */
  computed: number;
  /** Samples whose features came from the cache. */
  reused: number;
  /** Bytes of features held. */
  bytes: number;
}

/** Train-split rows (one per view id) of `row` floats, in fixed-size slabs. */
class ViewStore {
  private readonly slot = new Map<number, number>();
  private readonly slabs: Float32Array[] = [];
  private readonly slabRows: number;

  constructor(private readonly row: number) {
    this.slabRows = Math.max(1, Math.floor(SLAB_BYTES / (row * 4)));
  }

  get size(): number {
    return this.slot.size;
  }

  has(view: number): boolean {
    return this.slot.has(view);
  }

  copyTo(view: number, out: Float32Array, row: number): boolean {
    const s = this.slot.get(view);
    if (s === undefined) return false;
    const slab = this.slabs[Math.floor(s / this.slabRows)]!;
    const start = (s % this.slabRows) * this.row;
    out.set(slab.subarray(start, start + this.row), row * this.row);
    return true;
  }

  add(view: number, src: Float32Array, row: number): void {
    if (this.slot.has(view)) return;
    const s = this.slot.size;
    if (s % this.slabRows === 0) this.slabs.push(new Float32Array(this.slabRows * this.row));
    this.slabs[Math.floor(s / this.slabRows)]!.set(
      src.subarray(row * this.row, (row + 1) * this.row),
      (s % this.slabRows) * this.row,
    );
    this.slot.set(view, s);
  }
}

export class FeatureCache {
  /** Created with the first computed rows, when the per-sample shape is known. */
  private train: ViewStore | null = null;
  /** Per-sample shape of a row (e.g. [512], or [14, 14, 256] entering layer4 at 224 px) and its float count. */
  private shape: number[] | null = null;
  private rowFloats = 0;
  /** The val pass, once it was complete, deterministic and within budget; null until then. */
  private val: FeatureBatch[] | null = null;
  private valBytes = 0;
  private readonly counts = { computed: 0, reused: 0 };

  constructor(
    private readonly model: ResNet18,
    private readonly imageSize: number,
    private readonly maxBytes: number = FEATURE_CACHE_DEFAULTS.maxBytes,
    /** Where the network is cut: 'fc' (head-only) or the first trainable stage (cacheStage). */
    readonly at: Stage = 'fc',
    /** Images per call of the frozen layers (withTrainFeatures, the first val pass). */
    private readonly groupRows: number = FEATURE_GROUP_ROWS,
  ) {}

  stats(): FeatureCacheStats {
    return { ...this.counts, bytes: this.bytes() };
  }

  private bytes(): number {
    return (this.train?.size ?? 0) * this.rowFloats * 4 + this.valBytes;
  }

  /** The batch's rows (backbone features, or activations at `at`): cached views copied, the others computed. */
  async trainFeatures(batch: Batch): Promise<FeatureBatch> {
    return (await this.groupFeatures([batch]))[0]!;
  }

  /**
   * The batches of `source`, each with its rows: the first `skip` pass through without (a resumed epoch's replayed
   * batches), the others in groups of whole batches of at most groupRows images, whose missing rows go through
   * the frozen layers in one call — per image several times faster than one batch of 32 at a time at small sizes, for
   * the same rows up to rounding (as for any other batch mates: see above). The group is bounded by what one pass may
   * hold on the backend (maxMicroBatch: at 224 px on wasm, one batch at a time as before).
   */
  async *withTrainFeatures(
    source: AsyncIterable<Batch>,
    skip = 0,
  ): AsyncGenerator<{ batch: Batch; features: FeatureBatch | null }, void, undefined> {
    for await (const group of this.groups(source, skip))
      if (group.features) {
        const features = await this.groupFeatures(group.batches);
        for (const [i, batch] of group.batches.entries()) yield { batch, features: features[i]! };
      } else for (const batch of group.batches) yield { batch, features: null };
  }

  /**
   * `source` in groups of whole batches of at most groupRows images, at least one batch (the first `skip` batches
   * alone, marked as needing no rows).
   */
  private async *groups(
    source: AsyncIterable<Batch>,
    skip: number,
  ): AsyncGenerator<{ batches: Batch[]; features: boolean }, void, undefined> {
    const target = Math.max(1, Math.min(this.groupRows, maxMicroBatch(this.imageSize)));
    let group: Batch[] = [];
    let rows = 0;
    let index = 0;
    for await (const batch of source) {
      if (index++ < skip) {
        yield { batches: [batch], features: false };
        continue;
      }
      if (group.length > 0 && rows + batch.n > target) {
        yield { batches: group, features: true };
        group = [];
        rows = 0;
      }
      group.push(batch);
      rows += batch.n;
    }
    if (group.length > 0) yield { batches: group, features: true };
  }

  /** The rows of each batch of `batches`: cached views copied, the missing ones of all of them in one backbone call. */
  private async groupFeatures(batches: readonly Batch[]): Promise<FeatureBatch[]> {
    const missing: { batch: Batch; p: number; into: number }[] = [];
    const cached: { view: number; p: number; into: number }[] = [];
    for (const [into, batch] of batches.entries())
      for (let p = 0; p < batch.n; p++) {
        const view = batch.views?.[p] ?? -1;
        if (view >= 0 && this.train?.has(view)) cached.push({ view, p, into });
        else missing.push({ batch, p, into });
      }
    // computed first: the first call learns the row shape from it
    const computed = missing.length > 0 ? await this.backbone(missing) : null;
    const row = this.rowFloats;
    const out: FeatureBatch[] = batches.map((b) => ({
      features: new Float32Array(b.n * row),
      y: b.y,
      n: b.n,
      at: this.at,
      shape: this.shape!,
    }));
    for (const { view, p, into } of cached) {
      this.train!.copyTo(view, out[into]!.features, p);
      this.counts.reused++;
    }
    for (const [r, { batch, p, into }] of missing.entries()) {
      out[into]!.features.set(computed!.subarray(r * row, (r + 1) * row), p * row);
      const view = batch.views?.[p] ?? -1;
      if (view >= 0 && this.bytes() + row * 4 <= this.maxBytes) this.train!.add(view, computed!, r);
    }
    return out;
  }

  /**
   * The val pass as feature batches. The first call computes them from `source()` and keeps them when every view is
   * deterministic and they fit the budget; later calls replay them without touching `source`.
   */
  async *valFeatures(source: () => AsyncIterable<Batch>): AsyncGenerator<FeatureBatch, void, undefined> {
    if (this.val) {
      for (const b of this.val) {
        this.counts.reused += b.n;
        yield b;
      }
      return;
    }
    const kept: FeatureBatch[] = [];
    let keep = true;
    let bytes = 0;
    for await (const group of this.groups(source(), 0)) {
      const all = group.batches.flatMap((batch) => Array.from({ length: batch.n }, (_, p) => ({ batch, p })));
      const features = await this.backbone(all);
      let first = 0;
      for (const batch of group.batches) {
        const rows = features.slice(first * this.rowFloats, (first + batch.n) * this.rowFloats);
        first += batch.n;
        const out: FeatureBatch = { features: rows, y: batch.y, n: batch.n, at: this.at, shape: this.shape! };
        bytes += batch.n * this.rowFloats * 4;
        if (keep && (!batch.views?.every((v) => v >= 0) || this.bytes() + bytes > this.maxBytes)) keep = false;
        if (keep) kept.push(out);
        yield out;
      }
    }
    if (keep) {
      this.val = kept;
      this.valBytes = bytes;
    }
  }

  /** Eval-mode rows (model.prefix at `at`) of the samples `rows` (of their batches), in order, outside any gradient tape. */
  private async backbone(rows: readonly { batch: Batch; p: number }[]): Promise<Float32Array> {
    const px = this.imageSize * this.imageSize * 3;
    for (const batch of new Set(rows.map((r) => r.batch)))
      if (batch.x.length !== batch.n * px)
        throw new Error(`batch of ${batch.n} has ${batch.x.length} values, expected ${batch.n * px}`);
    const only = rows[0]!.batch;
    let x = only.x;
    if (rows.length !== only.n || rows.some((r, i) => r.batch !== only || r.p !== i)) {
      x = new Float32Array(rows.length * px);
      for (const [r, { batch, p }] of rows.entries()) x.set(batch.x.subarray(p * px, (p + 1) * px), r * px);
    }
    const t = tf.tidy(() =>
      this.model.prefix(tf.tensor4d(x, [rows.length, this.imageSize, this.imageSize, 3]), this.at),
    );
    try {
      if (!this.shape) {
        this.shape = t.shape.slice(1);
        this.rowFloats = this.shape.reduce((a, b) => a * b, 1);
        this.train = new ViewStore(this.rowFloats);
      }
      const data = (await t.data()) as Float32Array;
      this.counts.computed += rows.length;
      return data;
    } finally {
      t.dispose();
    }
  }
}
