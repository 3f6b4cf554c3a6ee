import fc from 'fast-check';
import {
  centerCropRect,
  centralFallbackCrop,
  DEFAULT_RATIO,
  randomResizedCropParams,
  resizeShorterSide,
  roundHalfEven,
  trainOp,
  valOp,
  valResizeSize,
} from '../../src/data/geometry';
import { mulberry32 } from '../../src/data/prng';
import fixtures from './data-torchvision-fixtures.json';

/** An RNG that records what it returned. */
function recording(seed: number) {
  const inner = mulberry32(seed);
  const draws: number[] = [];
  const rng = () => {
    const u = inner();
    draws.push(u);
    return u;
  };
  return { rng, draws };
}

/** An RNG that replays a list. */
function replay(us: readonly number[]) {
  let k = 0;
  const rng = () => {
    const u = us[k++];
    if (u === undefined) throw new Error('stream exhausted');
    return u;
  };
  return { rng, used: () => k };
}

describe('roundHalfEven (Python round)', () => {
  it.each([
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [3.5, 4],
    [2.4999, 2],
    [2.5001, 3],
    [-0.5, 0],
    [-1.5, -2],
    [7, 7],
  ])('round(%p) = %p', (x, want) => {
    expect(roundHalfEven(x)).toBe(want);
  });
});

describe('RandomResizedCrop.get_params', () => {
  it('matches torchvision 0.14 fed the same uniform draws (incl. the number of draws used)', () => {
    expect(fixtures.randomResizedCrop.length).toBeGreaterThan(100);
    let fallbacks = 0;
    for (const c of fixtures.randomResizedCrop) {
      const s = replay(c.us);
      const got = randomResizedCropParams(c.width, c.height, c.scale as [number, number], DEFAULT_RATIO, s.rng);
      expect({ case: c, got }).toEqual({ case: c, got: c.expect });
      expect(s.used()).toBe(c.draws);
      if (c.draws === 20) fallbacks++;
    }
    expect(fallbacks).toBeGreaterThan(10); // the fixture exercises the fallback, not only the happy path
  });

  it('successful attempts have area in scale·W·H and aspect in [3/4, 4/3] (up to rounding), inside the image', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3000 }),
        fc.integer({ min: 1, max: 3000 }),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        fc.integer(),
        (W, H, a, b, seed) => {
          const scale: [number, number] = [Math.min(a, b), Math.max(a, b)];
          const { rng, draws } = recording(seed);
          const r = randomResizedCropParams(W, H, scale, DEFAULT_RATIO, rng);
          expect(Number.isInteger(r.left) && Number.isInteger(r.top)).toBe(true);
          expect(r.width).toBeGreaterThan(0);
          expect(r.height).toBeGreaterThan(0);
          expect(r.left + r.width).toBeLessThanOrEqual(W);
          expect(r.top + r.height).toBeLessThanOrEqual(H);
          // Find the attempt that succeeded (pairs of draws: area fraction, log-ratio), if any.
          const area = W * H;
          const logLo = Math.log(3 / 4);
          const logHi = Math.log(4 / 3);
          let k = 0;
          for (; k < 10; k++) {
            const ss = scale[0] + (scale[1] - scale[0]) * draws[2 * k]!;
            const rr = Math.exp(logLo + (logHi - logLo) * draws[2 * k + 1]!);
            const w = roundHalfEven(Math.sqrt(area * ss * rr));
            const h = roundHalfEven(Math.sqrt((area * ss) / rr));
            if (w > 0 && w <= W && h > 0 && h <= H) break;
          }
          if (k === 10) {
            expect(draws).toHaveLength(20);
            expect(r).toEqual(centralFallbackCrop(W, H, DEFAULT_RATIO));
            return;
          }
          expect(draws).toHaveLength(2 * k + 4); // then top, then left
          const s = scale[0] + (scale[1] - scale[0]) * draws[2 * k]!;
          const logr = logLo + (logHi - logLo) * draws[2 * k + 1]!;
          expect(r.top).toBe(Math.floor(draws[2 * k + 2]! * (H - r.height + 1)));
          expect(r.left).toBe(Math.floor(draws[2 * k + 3]! * (W - r.width + 1)));
          expect(s).toBeGreaterThanOrEqual(scale[0]);
          expect(s).toBeLessThanOrEqual(scale[1]);
          expect(Math.exp(logr)).toBeGreaterThanOrEqual(3 / 4 - 1e-12);
          expect(Math.exp(logr)).toBeLessThanOrEqual(4 / 3 + 1e-12);
          expect(r.width).toBe(roundHalfEven(Math.sqrt(area * s * Math.exp(logr))));
          expect(r.height).toBe(roundHalfEven(Math.sqrt((area * s) / Math.exp(logr))));
          // The rounded crop stays within half a pixel per side of the sampled area and ratio.
          expect((r.width - 0.5) * (r.height - 0.5)).toBeLessThanOrEqual(area * scale[1] + 1e-9);
          expect((r.width + 0.5) * (r.height + 0.5)).toBeGreaterThanOrEqual(area * scale[0] - 1e-9);
          expect((r.width + 0.5) / Math.max(0.5, r.height - 0.5)).toBeGreaterThanOrEqual(3 / 4 - 1e-9);
          expect((r.width - 0.5) / (r.height + 0.5)).toBeLessThanOrEqual(4 / 3 + 1e-9);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('falls back to a centred crop clamped to the ratio range after 10 failed attempts', () => {
    // A 1000x10 strip: no crop of ≥ 90% of the area with ratio ≤ 4/3 fits its height.
    const wide = recording(1);
    expect(randomResizedCropParams(1000, 10, [0.9, 1], DEFAULT_RATIO, wide.rng)).toEqual({
      left: 493,
      top: 0,
      width: 13,
      height: 10,
    });
    expect(wide.draws).toHaveLength(20);
    const tall = recording(2);
    expect(randomResizedCropParams(10, 1000, [0.9, 1], DEFAULT_RATIO, tall.rng)).toEqual({
      left: 0,
      top: 493,
      width: 10,
      height: 13,
    });
    // In-range aspect ratio: the whole image.
    expect(centralFallbackCrop(100, 90, DEFAULT_RATIO)).toEqual({ left: 0, top: 0, width: 100, height: 90 });
    // scale (1, 1) on a square: only ratio exactly 1 fits, so practically always the whole image.
    expect(randomResizedCropParams(100, 100, [1, 1], DEFAULT_RATIO, mulberry32(3))).toEqual({
      left: 0,
      top: 0,
      width: 100,
      height: 100,
    });
  });
});

describe('val geometry (Resize(round(s·256/224)) → CenterCrop(s))', () => {
  it('resizes the shorter side, truncating the longer as torchvision does', () => {
    expect(valResizeSize(224)).toBe(256);
    expect(valResizeSize(32)).toBe(37);
    expect(resizeShorterSide(500, 375, 256)).toEqual({ width: 341, height: 256 });
    expect(resizeShorterSide(375, 500, 256)).toEqual({ width: 256, height: 341 });
    expect(resizeShorterSide(28, 28, 256)).toEqual({ width: 256, height: 256 });
    expect(resizeShorterSide(3, 2000, 37)).toEqual({ width: 37, height: 24666 });
  });

  it('centres the crop with round-half-even offsets', () => {
    expect(centerCropRect(341, 256, 224, 224)).toEqual({ left: 58, top: 16, width: 224, height: 224 });
    expect(centerCropRect(37, 37, 32, 32)).toEqual({ left: 2, top: 2, width: 32, height: 32 }); // round(2.5) = 2
    expect(centerCropRect(39, 37, 32, 32)).toEqual({ left: 4, top: 2, width: 32, height: 32 }); // round(3.5) = 4
    expect(() => centerCropRect(30, 40, 32, 32)).toThrow(RangeError);
    expect(valOp(500, 375, 224)).toEqual({
      pre: null,
      resize: { width: 341, height: 256 },
      post: { left: 58, top: 16, width: 224, height: 224 },
      flip: false,
    });
  });
});

describe('trainOp', () => {
  const aug = { randomResizedCrop: true, horizontalFlip: true, scale: [0.08, 1] as [number, number] };

  it('draws the crop, then one number for the flip (flipped when < 0.5)', () => {
    const us = [0.1, 0.5, 0.25, 0.75, 0.49];
    const op = trainOp(200, 100, 32, aug, replay(us).rng);
    const crop = randomResizedCropParams(200, 100, [0.08, 1], DEFAULT_RATIO, replay(us).rng);
    expect(op).toEqual({ pre: crop, resize: { width: 32, height: 32 }, post: null, flip: true });
    expect(trainOp(200, 100, 32, aug, replay([0.1, 0.5, 0.25, 0.75, 0.5]).rng).flip).toBe(false);
  });

  it('uses the val geometry (+ flip) without RandomResizedCrop, and never flips when disabled', () => {
    const noCrop = trainOp(500, 375, 224, { ...aug, randomResizedCrop: false }, replay([0.1]).rng);
    expect(noCrop).toEqual(valOp(500, 375, 224, true));
    const s = replay([0.3, 0.6, 0.1, 0.1]);
    expect(trainOp(500, 375, 224, { ...aug, horizontalFlip: false }, s.rng).flip).toBe(false);
    expect(s.used()).toBe(4);
  });

  it('accepts a reversed scale range as the same interval', () => {
    const a = trainOp(300, 200, 64, { ...aug, scale: [1, 0.5] }, mulberry32(9));
    const b = trainOp(300, 200, 64, { ...aug, scale: [0.5, 1] }, mulberry32(9));
    expect(a).toEqual(b);
  });
});
