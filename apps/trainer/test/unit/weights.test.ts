import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/backends';
import { resnet18Tensors, tfShape } from '../../src/model/architecture';
import { randomStateDict } from '../../src/model/init';
import { hwioToOihw, oihwToHwio, transpose2d } from '../../src/model/layout';
import { referenceStateDict } from '../../src/model/reference-init';
import { ResNet18 } from '../../src/model/resnet18';
import { parseSafetensors } from '../../src/model/safetensors';
import {
  exportStateDict,
  loadSafetensors,
  loadStateDict,
  modelToSafetensors,
  stateDictFromSafetensors,
  WeightsError,
} from '../../src/model/weights';
import { sameBits } from '../helpers/reference';

describe('weights: PyTorch layouts <-> model', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('converts conv OIHW <-> HWIO and linear [out,in] <-> [in,out] like tf.transpose', () => {
    const shape = [4, 3, 2, 5];
    const data = Float32Array.from({ length: 120 }, (_, i) => i);
    const hwio = oihwToHwio(data, shape);
    expect(
      sameBits(
        hwio,
        tf.tidy(() => tf.transpose(tf.tensor(data, shape), [2, 3, 1, 0]).dataSync() as Float32Array),
      ),
    ).toBe(true);
    expect(sameBits(hwioToOihw(hwio, shape), data)).toBe(true);
    const m = Float32Array.from({ length: 6 }, (_, i) => i);
    expect([...transpose2d(m, 2, 3)]).toEqual([0, 3, 1, 4, 2, 5]);
  });

  it('loads a state dict into TF layouts and exports it back unchanged', async () => {
    const dict = referenceStateDict(3, 4);
    const model = new ResNet18(4);
    try {
      const report = loadStateDict(model, dict);
      expect(report).toEqual({ headReset: false, unexpected: [] });
      expect(model.variable('conv1.weight').shape).toEqual([7, 7, 3, 64]);
      expect(model.variable('fc.weight').shape).toEqual([512, 4]);
      // element [o=1, i=2, h=3, w=4] of conv1 lands at [3, 4, 2, 1]
      const torchIndex = ((1 * 3 + 2) * 7 + 3) * 7 + 4;
      const v = tf.tidy(() => tf.slice(model.variable('conv1.weight'), [3, 4, 2, 1], [1, 1, 1, 1]).dataSync()[0]);
      expect(v).toBe(dict.get('conv1.weight')!.data[torchIndex]);
      const back = await exportStateDict(model);
      for (const [name, t] of dict) expect([name, sameBits(back.get(name)!.data, t.data)]).toEqual([name, true]);
    } finally {
      model.dispose();
    }
  });

  it('round-trips through safetensors, including running stats and num_batches_tracked', async () => {
    const model = new ResNet18(3);
    const other = new ResNet18(3);
    try {
      loadStateDict(model, randomStateDict(3, 7));
      model.numBatchesTracked.set('layer1.0.bn1', 5);
      const bytes = await modelToSafetensors(model);
      const file = parseSafetensors(bytes);
      expect(file.tensors.size).toBe(resnet18Tensors(3, { numBatchesTracked: true }).length);
      expect(file.tensors.get('layer1.0.bn1.num_batches_tracked')!.dtype).toBe('I64');
      loadSafetensors(other, bytes);
      expect(other.numBatchesTracked.get('layer1.0.bn1')).toBe(5);
      for (const d of model.tensors) {
        const same = sameBits(
          other.variable(d.name).dataSync() as Float32Array,
          model.variable(d.name).dataSync() as Float32Array,
        );
        expect([d.name, same]).toEqual([d.name, true]);
      }
    } finally {
      model.dispose();
      other.dispose();
    }
  });

  it('keeps the backbone and initialises a fresh head (seeded) when fc does not match', () => {
    const dict = referenceStateDict(1, 10);
    const a = new ResNet18(3);
    const b = new ResNet18(3);
    try {
      const report = loadStateDict(a, dict, { resetMismatchedHead: { seed: 5 } });
      loadStateDict(b, dict, { resetMismatchedHead: { seed: 5 } });
      expect(report.headReset).toBe(true);
      const backbone = a.variable('layer4.1.conv2.weight').dataSync() as Float32Array;
      expect(sameBits(backbone, oihwToHwio(dict.get('layer4.1.conv2.weight')!.data, [512, 512, 3, 3]))).toBe(true);
      const w = a.variable('fc.weight').dataSync() as Float32Array;
      expect(sameBits(w, b.variable('fc.weight').dataSync() as Float32Array)).toBe(true); // same seed, same head
      const bound = 1 / Math.sqrt(512);
      expect(w.reduce((m, v) => Math.max(m, Math.abs(v)), 0)).toBeLessThanOrEqual(bound);
      expect(() => loadStateDict(a, dict)).toThrow(WeightsError);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('rejects missing tensors and wrong backbone shapes with WeightsError', () => {
    const model = new ResNet18(10);
    try {
      const missing = referenceStateDict(1, 10);
      missing.delete('layer3.1.bn2.running_var');
      expect(() => loadStateDict(model, missing)).toThrow(/missing layer3.1.bn2.running_var/);
      const wrong = referenceStateDict(1, 10);
      wrong.set('conv1.weight', { shape: [64, 1, 7, 7], data: new Float32Array(64 * 49) });
      expect(() => loadStateDict(model, wrong)).toThrow(WeightsError);
      const extra = referenceStateDict(1, 10);
      extra.set('aux.weight', { shape: [1], data: new Float32Array(1) });
      expect(loadStateDict(model, extra).unexpected).toEqual(['aux.weight']);
    } finally {
      model.dispose();
    }
  });

  it('initialises like torchvision: BN 1/0, running 0/1, kaiming-normal fan_out convs, deterministic per seed', () => {
    const a = randomStateDict(5, 1);
    const b = randomStateDict(5, 1);
    const c = randomStateDict(5, 2);
    expect(sameBits(a.get('layer1.0.conv1.weight')!.data, b.get('layer1.0.conv1.weight')!.data)).toBe(true);
    expect(sameBits(a.get('layer1.0.conv1.weight')!.data, c.get('layer1.0.conv1.weight')!.data)).toBe(false);
    expect([...a.get('bn1.weight')!.data].every((v) => v === 1)).toBe(true);
    expect([...a.get('bn1.running_mean')!.data].every((v) => v === 0)).toBe(true);
    const w = a.get('layer3.0.conv2.weight')!.data; // fan_out = 256 * 9
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(Math.abs(std - Math.sqrt(2 / (256 * 9))) / Math.sqrt(2 / (256 * 9))).toBeLessThan(0.02);
    for (const d of resnet18Tensors(5)) expect(a.get(d.name)!.data.length).toBe(tfShape(d).reduce((x, y) => x * y, 1));
  });

  it('reads num_batches_tracked from a file without listing it as unexpected', async () => {
    const model = new ResNet18(2);
    try {
      loadStateDict(model, randomStateDict(2, 1));
      const parsed = stateDictFromSafetensors(await modelToSafetensors(model));
      expect(parsed.numBatchesTracked.get('bn1')).toBe(0);
      expect([...parsed.dict.keys()].some((k) => k.endsWith('num_batches_tracked'))).toBe(false);
    } finally {
      model.dispose();
    }
  });
});
