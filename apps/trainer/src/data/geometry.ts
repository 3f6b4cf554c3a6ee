/**
 * The geometry of torchvision's transforms, as pure functions of the image size (and an RNG). The pixels are produced
 * by image-kernel.cjs from the TransformOp these return.
 *
 * train: RandomResizedCrop(size, scale, ratio=(3/4, 4/3)) → RandomHorizontalFlip(0.5)
 * val:   Resize(round(size·256/224)) → CenterCrop(size)
 */
import type { Rect, TransformOp } from './image-kernel.cjs';
import { randint, uniform } from './prng';

export type { Rect, TransformOp };

export const DEFAULT_RATIO: readonly [number, number] = [3 / 4, 4 / 3];

/** Python 3's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * torchvision.transforms.RandomResizedCrop.get_params: up to 10 attempts at a crop whose area is a `scale` fraction of
 * the image and whose log aspect ratio is uniform in log(`ratio`); if none fits, a central crop clamped to `ratio`.
 * Draw order per attempt: area fraction, log-ratio; on success: top, then left.
 */
export function randomResizedCropParams(
  width: number,
  height: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
  rng: () => number,
): Rect {
  const area = width * height;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * uniform(rng, scale[0], scale[1]);
    const aspect = Math.exp(uniform(rng, logLo, logHi));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = randint(rng, 0, height - h + 1);
      const left = randint(rng, 0, width - w + 1);
      return { left, top, width: w, height: h };
    }
  }
  return centralFallbackCrop(width, height, ratio);
}

/** RandomResizedCrop's fallback: the whole image, cut down to the nearest allowed aspect ratio, centred. */
export function centralFallbackCrop(width: number, height: number, ratio: readonly [number, number]): Rect {
  const inRatio = width / height;
  const lo = Math.min(ratio[0], ratio[1]);
  const hi = Math.max(ratio[0], ratio[1]);
  let w = width;
  let h = height;
  if (inRatio < lo) {
    w = width;
    h = roundHalfEven(w / lo);
  } else if (inRatio > hi) {
    h = height;
    w = roundHalfEven(h * hi);
  }
  return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
}

/** torchvision Resize(int): the shorter side becomes `size`, the longer `int(size * long / short)`. */
export function resizeShorterSide(width: number, height: number, size: number): { width: number; height: number } {
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

/** torchvision CenterCrop on an image at least as large as the crop: offsets are int(round((in - out) / 2)). */
export function centerCropRect(width: number, height: number, cropW: number, cropH: number): Rect {
  if (cropW > width || cropH > height) throw new RangeError(`crop ${cropW}x${cropH} larger than ${width}x${height}`);
  return {
    left: roundHalfEven((width - cropW) / 2),
    top: roundHalfEven((height - cropH) / 2),
    width: cropW,
    height: cropH,
  };
}

/** The evaluation resize: round(imageSize · 256 / 224), i.e. 256 for 224 as in the ImageNet recipe. */
export function valResizeSize(imageSize: number): number {
  return Math.round((imageSize * 256) / 224);
}

/** Resize(round(size·256/224)) then CenterCrop(size); optionally mirrored. */
export function valOp(width: number, height: number, imageSize: number, flip = false): TransformOp {
  const resize = resizeShorterSide(width, height, valResizeSize(imageSize));
  return { pre: null, resize, post: centerCropRect(resize.width, resize.height, imageSize, imageSize), flip };
}

export interface AugmentationOptions {
  randomResizedCrop: boolean;
  horizontalFlip: boolean;
  scale: readonly [number, number];
}

/**
 * The train transform for one image. Random draws, in order: RandomResizedCrop's (if enabled), then one for the flip
 * (if enabled; flipped when < 0.5, as `torch.rand(1) < p`). Without RandomResizedCrop the val geometry is used.
 */
export function trainOp(
  width: number,
  height: number,
  imageSize: number,
  aug: AugmentationOptions,
  rng: () => number,
): TransformOp {
  // torchvision warns and proceeds on a reversed range; we sample the same interval the right way round.
  const scale: [number, number] = [Math.min(aug.scale[0], aug.scale[1]), Math.max(aug.scale[0], aug.scale[1])];
  const crop = aug.randomResizedCrop ? randomResizedCropParams(width, height, scale, DEFAULT_RATIO, rng) : null;
  const flip = aug.horizontalFlip ? rng() < 0.5 : false;
  if (!crop) return valOp(width, height, imageSize, flip);
  return { pre: crop, resize: { width: imageSize, height: imageSize }, post: null, flip };
}
