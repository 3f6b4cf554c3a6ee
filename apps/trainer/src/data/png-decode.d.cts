/** Types of png-decode.cjs (plain CommonJS so that worker threads can load it without a TypeScript loader). */
export interface PngHeader {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  interlaced: boolean;
}

/** A PNG whose header and chunk structure passed the checks, not yet inflated. */
export interface InspectedPng extends PngHeader {
  palette: Buffer | undefined;
  idat: Buffer[];
}

/** Images with more pixels are left to sharp. */
export declare const FAST_MAX_PIXELS: number;

export declare function readPngHeader(bytes: Buffer): PngHeader | null;

/** null: let sharp decide (not a PNG, or one this path cannot vouch for). Never throws. */
export declare function inspectPng(bytes: Buffer): InspectedPng | null;

/** Packed 8-bit RGB exactly as sharp decodes it, or null: let sharp decide. Never throws. */
export declare function decodePng(png: InspectedPng): { data: Buffer; width: number; height: number } | null;
