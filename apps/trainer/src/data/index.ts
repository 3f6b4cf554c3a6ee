/**
 * The trainer's data pipeline: ImageFolder datasets in S3 → validated index → deterministic, augmented, normalised
 * NHWC float32 batches. See dataset-index.ts (validation), batches.ts (order, augmentation, prefetch), geometry.ts
 * (torchvision's transforms), image-kernel.cjs (decode and resampling) and decode-pool.ts (worker threads).
 */
export { type Batch, type BatchOptions, batches } from './batches';
export { type DatasetIndex, type ImageRef, type LoadDatasetOptions, loadDatasetIndex } from './dataset-index';
export {
  closeSharedDecodePools,
  createDecodePool,
  type DecodePool,
  type DecodePoolOptions,
  sharedDecodePool,
} from './decode-pool';
export { DatasetError } from './errors';
export { IMG_EXTENSIONS } from './extensions';
export { ImageDecodeError } from './image-kernel.cjs';
export { preprocessForInference } from './inference';
export { DATA_DEFAULTS } from './limits';
export { IMAGENET_MEAN, IMAGENET_STD } from './normalize';
