import { IMAGENET_MEAN, IMAGENET_STD, normalizedValue, normalizeInto } from '../../src/data/normalize';
import fixtures from './data-torchvision-fixtures.json';

describe('ImageNet normalisation', () => {
  it('uses the ImageNet mean and std', () => {
    expect(IMAGENET_MEAN).toEqual([0.485, 0.456, 0.406]);
    expect(IMAGENET_STD).toEqual([0.229, 0.224, 0.225]);
  });

  it('maps 0 and 255 to (0 − mean) / std and (1 − mean) / std', () => {
    for (let c = 0; c < 3; c++) {
      expect(normalizedValue(c, 0)).toBeCloseTo(-IMAGENET_MEAN[c]! / IMAGENET_STD[c]!, 6);
      expect(normalizedValue(c, 255)).toBeCloseTo((1 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!, 6);
    }
    expect(normalizedValue(0, 0)).toBeCloseTo(-2.117904, 5);
    expect(normalizedValue(2, 255)).toBeCloseTo(2.64, 5);
  });

  it('is bit-identical to torchvision ToTensor + Normalize for every 8-bit value', () => {
    const want = fixtures.normalize;
    for (let c = 0; c < 3; c++) {
      for (let v = 0; v < 256; v++) {
        const got = normalizedValue(c, v);
        if (got !== want[c]![v]) throw new Error(`channel ${c} value ${v}: ${got} != torch ${want[c]![v]}`);
      }
    }
  });

  it('writes HWC float32 at the given offset, channel by channel', () => {
    const rgb = Uint8Array.from([0, 128, 255, 255, 0, 128]);
    const out = new Float32Array(10).fill(99);
    normalizeInto(rgb, out, 2);
    expect(out[0]).toBe(99);
    expect(out[1]).toBe(99);
    expect(Array.from(out.slice(2, 8))).toEqual([
      normalizedValue(0, 0),
      normalizedValue(1, 128),
      normalizedValue(2, 255),
      normalizedValue(0, 255),
      normalizedValue(1, 0),
      normalizedValue(2, 128),
    ]);
    expect(out[8]).toBe(99);
    expect(() => normalizeInto(rgb, out, 5)).toThrow(RangeError);
  });
});
