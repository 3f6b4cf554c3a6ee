import { valOp } from './geometry';
import { dimensions, transform } from './image-kernel.cjs';
import { DATA_DEFAULTS } from './limits';
import { normalizeInto } from './normalize';

/**
 * The val transform on one encoded image, for prediction: Resize(round(imageSize·256/224)) → CenterCrop(imageSize) →
 * RGB → ImageNet normalisation. Returns imageSize × imageSize × 3 float32, HWC (a batch of one in NHWC).
 * Throws ImageDecodeError (code TOO_LARGE / UNDECODABLE / UNSUPPORTED) for images it cannot use.
 */
export async function preprocessForInference(
  bytes: Uint8Array,
  imageSize: number,
  opts: { maxPixels?: number } = {},
): Promise<Float32Array> {
  const maxPixels = opts.maxPixels ?? DATA_DEFAULTS.maxPixels;
  const { width, height } = await dimensions(bytes, maxPixels);
  const rgb = await transform(bytes, valOp(width, height, imageSize), maxPixels);
  const out = new Float32Array(imageSize * imageSize * 3);
  normalizeInto(rgb, out, 0);
  return out;
}
