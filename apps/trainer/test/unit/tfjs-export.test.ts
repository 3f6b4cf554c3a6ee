/**
 * The TF.js LayersModel export (model/tfjs-export.ts), loaded back with @tensorflow/tfjs-layers itself: it must run
 * torchvision's ResNet18 (the seed-1 reference weights against the fixture's logits, and against our own forward) and
 * be exactly what tfjs-layers would save for that topology.
 */
import { JobSpecSchema } from '@gpulab/core';
import { layout } from '@gpulab/storage';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from '../../src/backends';
import { nchwToNhwc, referenceInput, referenceStateDict } from '../../src/model/reference-init';
import { ResNet18 } from '../../src/model/resnet18';
import { exportTfjs, modelToTfjs, TFJS_FILES, type TfjsExport } from '../../src/model/tfjs-export';
import { exportStateDict, loadStateDict, WeightsError } from '../../src/model/weights';
import { TFJS_MODEL_FILES, writeArtifacts } from '../../src/train/artifacts';
import { MemoryStore } from '../helpers/memory-store';
import { loadReference, relError } from '../helpers/reference';

jest.setTimeout(120_000);

/** An IOHandler serving the exported files as a server would: model.json parsed from its bytes, then the .bin. */
function handlerFor(exp: TfjsExport): tf.io.IOHandler {
  const modelJson = JSON.parse(JSON.stringify(exp.modelJson)) as tf.io.ModelJSON;
  return {
    load: () =>
      tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
        expect(manifest.flatMap((g) => g.paths)).toEqual([TFJS_FILES.weights]);
        const bytes = exp.weightData.slice(); // a copy with its own ArrayBuffer, like a fetched file
        return [manifest.flatMap((g) => g.weights), bytes.buffer];
      }),
  };
}

describe('TF.js LayersModel export of ResNet18', () => {
  const ref = loadReference();
  let model: ResNet18;
  let exported: TfjsExport;
  let loaded: tfl.LayersModel;

  beforeAll(async () => {
    expect(await selectBackend('wasm')).toBe('wasm');
    model = new ResNet18(ref.num_classes);
    loadStateDict(model, referenceStateDict(ref.seed, ref.num_classes));
    exported = await modelToTfjs(model);
    loaded = await tfl.loadLayersModel(handlerFor(exported), { strict: true });
  });
  afterAll(() => {
    loaded?.dispose();
    model?.dispose();
  });

  it('runs in tfjs-layers with torchvision’s logits (64 px, eval mode)', () => {
    const x = nchwToNhwc(referenceInput('input64', [4, 3, 64, 64], ref.seed), [4, 3, 64, 64]);
    const [theirs, ours] = tf.tidy(() => {
      const input = tf.tensor4d(x, [4, 64, 64, 3]);
      const out = loaded.predict(input) as tf.Tensor;
      expect(out.shape).toEqual([4, ref.num_classes]);
      return [[...out.dataSync()], [...model.forward(input).dataSync()]];
    });
    expect(relError(theirs, ours)).toBeLessThan(1e-5);
    expect(relError(theirs, ref.eval_logits_64)).toBeLessThan(1e-4);
  });

  it('is what tfjs-layers itself saves for the loaded model: topology, weight names, order and bytes', async () => {
    const { modelJson, weightData } = exported;
    expect(modelJson.format).toBe('layers-model');
    expect(modelJson.convertedBy).toBe('gpulab');
    let saved: tf.io.ModelArtifacts | undefined;
    await loaded.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    expect(saved!.modelTopology).toEqual(JSON.parse(JSON.stringify(modelJson.modelTopology)));
    const specs = modelJson.weightsManifest[0]!.weights;
    expect(saved!.weightSpecs).toEqual(specs);
    const savedBytes = new Uint8Array(saved!.weightData as ArrayBuffer);
    expect(Buffer.compare(Buffer.from(savedBytes), Buffer.from(weightData))).toBe(0);
    // 62 trainable tensors (20 conv kernels, 20 × bn gamma/beta, fc kernel/bias) + 40 moving statistics.
    expect(specs).toHaveLength(102);
    expect(specs.slice(0, 3).map((s) => s.name)).toEqual(['conv1/kernel', 'bn1/gamma', 'bn1/beta']);
    expect(specs.find((s) => s.name === 'conv1/kernel')!.shape).toEqual([7, 7, 3, 64]);
    expect(specs.find((s) => s.name === 'layer2.0.downsample.0/kernel')!.shape).toEqual([1, 1, 64, 128]);
    expect(specs.at(-1)!.name).toBe('layer4.1.bn2/moving_variance');
    expect(weightData.byteLength).toBe(specs.reduce((n, s) => n + 4 * s.shape.reduce((a, b) => a * b, 1), 0));
  });

  it('exports a 3-class head and rejects incomplete weights', async () => {
    const dict = referenceStateDict(2, 3);
    const small = new ResNet18(3);
    try {
      loadStateDict(small, dict);
      const exp = exportTfjs(await exportStateDict(small));
      const fc = exp.modelJson.weightsManifest[0]!.weights.filter((s) => s.name.startsWith('fc/'));
      expect(fc).toEqual([
        { name: 'fc/kernel', shape: [512, 3], dtype: 'float32' },
        { name: 'fc/bias', shape: [3], dtype: 'float32' },
      ]);
      const three = await tfl.loadLayersModel(handlerFor(exp), { strict: true });
      try {
        const x = Float32Array.from({ length: 2 * 40 * 40 * 3 }, (_, i) => Math.sin(i * 0.37));
        const [theirs, ours] = tf.tidy(() => {
          const input = tf.tensor4d(x, [2, 40, 40, 3]);
          const out = three.predict(input) as tf.Tensor;
          expect(out.shape).toEqual([2, 3]);
          return [[...out.dataSync()], [...small.forward(input).dataSync()]];
        });
        expect(relError(theirs, ours)).toBeLessThan(1e-5);
      } finally {
        three.dispose();
      }
    } finally {
      small.dispose();
    }
    const incomplete = new Map(dict);
    incomplete.delete('layer3.1.bn2.running_var');
    expect(() => exportTfjs(incomplete)).toThrow(WeightsError);
    expect(() => exportTfjs(new Map())).toThrow(WeightsError);
  });

  it('is written by writeArtifacts under model/tfjs/ and loads from there', async () => {
    const store = new MemoryStore();
    const events: { type: string; key?: string }[] = [];
    await writeArtifacts({
      jobId: 'job',
      spec: JobSpecSchema.parse({ dataset: { uri: 's3://bucket/d' }, imageSize: 64 }),
      classes: Array.from({ length: ref.num_classes }, (_, i) => `c${i}`),
      backend: 'wasm',
      model,
      outcome: { status: 'completed', history: [], best: null, stoppedEarly: false },
      store,
      emit: async (e) => {
        events.push(e);
      },
    });
    const dir = `${layout.modelPrefix('job')}tfjs/`;
    expect(layout.modelPrefix('job') + TFJS_MODEL_FILES.model).toBe(`${dir}model.json`);
    const keys = events.filter((e) => e.type === 'artifact').map((e) => e.key);
    expect(keys).toEqual(expect.arrayContaining([`${dir}model.json`, `${dir}group1-shard1of1.bin`]));
    const modelJson = store.json<tf.io.ModelJSON>(`${dir}model.json`);
    expect(modelJson).toMatchObject({ format: 'layers-model', convertedBy: 'gpulab' });
    const fromStore: tf.io.IOHandler = {
      load: () =>
        tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
          const parts = manifest.flatMap((g) => g.paths).map((p) => store.objects.get(dir + p)!);
          expect(parts.every((b) => b !== undefined)).toBe(true);
          const bytes = Buffer.concat(parts);
          // the same weights as the in-memory export of the model (writeArtifacts goes through weights.safetensors)
          expect(Buffer.compare(bytes, Buffer.from(exported.weightData))).toBe(0);
          return [manifest.flatMap((g) => g.weights), new Uint8Array(bytes).buffer];
        }),
    };
    const fromS3 = await tfl.loadLayersModel(fromStore, { strict: true });
    try {
      const x = Float32Array.from({ length: 32 * 32 * 3 }, (_, i) => Math.cos(i * 0.11));
      const [theirs, ours] = tf.tidy(() => {
        const input = tf.tensor4d(x, [1, 32, 32, 3]);
        return [[...(fromS3.predict(input) as tf.Tensor).dataSync()], [...model.forward(input).dataSync()]];
      });
      expect(relError(theirs, ours)).toBeLessThan(1e-5);
    } finally {
      fromS3.dispose();
    }
  });
});
