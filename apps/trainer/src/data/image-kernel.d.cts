/** Types of image-kernel.cjs (plain CommonJS so that worker threads can load it without a TypeScript loader). */
export interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** `pre` crop on the decoded image, resize to exactly `resize`, `post` crop on the resized image, then mirror. */
export interface TransformOp {
  pre: Rect | null;
  resize: { width: number; height: number };
  post: Rect | null;
  flip: boolean;
}

export type ImageDecodeErrorCode = 'TOO_LARGE' | 'UNDECODABLE' | 'UNSUPPORTED';

export declare class ImageDecodeError extends Error {
  constructor(code: ImageDecodeErrorCode, message: string);
  readonly code: ImageDecodeErrorCode;
}

export declare const RESIZE_KERNEL: 'pillow-bilinear';

/** The geometry alone, on decoded packed RGB (width × height × 3). */
export declare function applyOp(data: Uint8Array, width: number, height: number, op: TransformOp): Uint8Array;

export declare function decodeRgb(
  bytes: Uint8Array,
  maxPixels: number,
): Promise<{ data: Uint8Array; width: number; height: number }>;

export declare function dimensions(
  bytes: Uint8Array,
  maxPixels: number,
): Promise<{ width: number; height: number; format?: string }>;

/** `rgb` (with `keep`): the decoded pixels, when the check decoded the whole image anyway (as decodeRgb's). */
export declare function probe(
  bytes: Uint8Array,
  maxPixels: number,
  opts?: { keep?: boolean },
): Promise<{ width: number; height: number; format: string; rgb?: Uint8Array }>;

export declare function transform(bytes: Uint8Array, op: TransformOp, maxPixels: number): Promise<Uint8Array>;
