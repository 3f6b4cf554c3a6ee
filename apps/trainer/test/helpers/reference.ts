/**
 * The torchvision ResNet18 reference fixture. A copy of ../shared/fixtures/resnet18 (the project's shared folder,
 * beside the repository) is kept in apps/trainer/test/fixtures/resnet18 so the tests run wherever the repository is
 * cloned; reference.test.ts checks the copy is identical to the shared one whenever that is present.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..', '..');
export const FIXTURE_DIR = path.resolve(REPO_ROOT, 'apps', 'trainer', 'test', 'fixtures', 'resnet18');
export const SHARED_FIXTURE_DIR = path.resolve(REPO_ROOT, '..', 'shared', 'fixtures', 'resnet18');

export interface Reference {
  seed: number;
  num_classes: number;
  checks: Record<string, [number, number, number]>;
  eval_logits_224: number[];
  eval_logits_64: number[];
  train_loss_step1: number;
  grad_norm_fc_weight: number;
  grad_norm_conv1_weight: number;
  bn1_running_var_after_step: number[];
  eval_logits_64_after_step: number[];
}

export function loadReference(): Reference {
  return JSON.parse(readFileSync(path.join(FIXTURE_DIR, 'reference-seed1.json'), 'utf8')) as Reference;
}

/**
 * Norm-based relative error ‖a − b‖₂ / ‖b‖₂ over whole vectors: one number per tensor that is insensitive to
 * individual near-zero entries (where element-wise relative error is meaningless).
 */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let d = 0;
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    d += (a[i]! - b[i]!) ** 2;
    n += b[i]! ** 2;
  }
  return Math.sqrt(d / n);
}

/** |a − b| / |b| for scalars. */
export function relScalar(a: number, b: number): number {
  return Math.abs(a - b) / Math.abs(b);
}

/** Bitwise equality of two float arrays (jest's toEqual is far too slow for millions of elements). */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  return (
    a.length === b.length &&
    Buffer.compare(
      Buffer.from(a.buffer, a.byteOffset, a.byteLength),
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    ) === 0
  );
}
