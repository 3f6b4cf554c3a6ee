import { resnet18Tensors } from '../../src/model/architecture';
import { fmix32, fnv1a32, uniformStream } from '../../src/model/hash-random';
import { checkValues, referenceInput, referenceStateDict } from '../../src/model/reference-init';
import { loadReference } from '../helpers/reference';

describe('reference weight generator (fixtures/resnet18/README.md)', () => {
  const ref = loadReference();
  const dict = referenceStateDict(ref.seed, ref.num_classes);

  it('matches the fixture checks [sum, first, last] for every listed tensor', () => {
    expect(Object.keys(ref.checks).length).toBeGreaterThanOrEqual(5);
    for (const [name, [sum, first, last]] of Object.entries(ref.checks)) {
      const t = dict.get(name);
      expect(t).toBeDefined();
      const [s, f, l] = checkValues(t!.data);
      expect(f).toBe(first); // exact: every value is a float32 computed the same way
      expect(l).toBe(last);
      expect(Math.abs(s - sum)).toBeLessThan(1e-9 * Math.max(1, Math.abs(sum)));
    }
  });

  it('fills every tensor of the state dict (no num_batches_tracked) with PyTorch shapes', () => {
    const descs = resnet18Tensors(10);
    expect(dict.size).toBe(descs.length);
    expect(descs.length).toBe(102); // 20 convs + 20 bns×4 + fc.weight + fc.bias
    for (const d of descs) expect(dict.get(d.name)!.shape).toEqual(d.torchShape);
    expect(dict.get('layer2.0.downsample.0.weight')!.shape).toEqual([128, 64, 1, 1]);
  });

  it('implements the hash primitives on unsigned 32-bit arithmetic', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c); // published FNV-1a test vector
    expect(fmix32(0)).toBe(0);
    const u = uniformStream(1, 'x');
    for (let i = 0; i < 1000; i++) {
      const v = u(i);
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(1);
      expect(Math.fround(v)).toBe(v);
    }
  });

  it('generates inputs in [-1, 1) deterministically', () => {
    const a = referenceInput('input64', [4, 3, 64, 64], 1);
    const b = referenceInput('input64', [4, 3, 64, 64], 1);
    expect(a).toEqual(b);
    expect(a.length).toBe(4 * 3 * 64 * 64);
    expect(Math.min(...a)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...a)).toBeLessThan(1);
    expect(referenceInput('input64', [4], 2)).not.toEqual(a.slice(0, 4));
  });
});
