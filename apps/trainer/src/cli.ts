/**
 * Trainer command-line tools.
 *
 *   logits --weights W.safetensors --input X.safetensors [--train-step labels.json] [--backend cpu|wasm]
 *          [--lr 0.1] [--momentum 0.9]
 *     Eval-mode logits of a torchvision-named ResNet18 (class count from fc) on an NCHW float input (the file's
 *     tensor named `input`, else its only tensor). With --train-step (a JSON array of labels): one training step in
 *     train mode with SGD — loss, gradient norms of fc.weight and conv1.weight, bn1 running variances, and the
 *     eval-mode logits after the step. Prints JSON.
 *   predict --model DIR_OR_S3_PREFIX [--top 5] [--backend …] IMAGE...
 *     Classifies images (local paths or s3:// URIs) with a trained model directory; prints one JSON line per image.
 *     S3 access uses GPULAB_S3_ENDPOINT / _REGION / _ACCESS_KEY_ID / _SECRET_ACCESS_KEY / _FORCE_PATH_STYLE.
 *
 * Run: node --import tsx apps/trainer/src/cli.ts <command> …
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { BACKENDS, type Backend } from '@gpulab/core';
import { createS3Client, getObjectBytes, parseS3Uri } from '@gpulab/storage';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from './backends';
import { parseS3Env } from './config';
import { dirStore, type ObjectStore, s3Store } from './io/object-store';
import { nchwToNhwc } from './model/reference-init';
import { ResNet18 } from './model/resnet18';
import { parseSafetensors, toFloat32 } from './model/safetensors';
import { loadSafetensors, stateDictFromSafetensors } from './model/weights';
import { classify, loadModelBundle } from './predict/model-bundle';
import { freezePlan } from './train/freeze';
import { Sgd } from './train/optimizers';
import { disposeStep, trainStep } from './train/step';

class UsageError extends Error {}

function backendOf(value: string | undefined, fallback: Backend): Backend {
  const b = (value ?? fallback) as Backend;
  if (!BACKENDS.includes(b)) throw new UsageError(`--backend must be one of ${BACKENDS.join(', ')}`);
  return b;
}

function numberOf(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`${flag} must be a number`);
  return n;
}

async function readInput(path: string): Promise<{ data: Float32Array; shape: [number, number, number, number] }> {
  const file = parseSafetensors(new Uint8Array(await readFile(path)));
  const raw = file.tensors.get('input') ?? (file.tensors.size === 1 ? [...file.tensors.values()][0] : undefined);
  if (!raw) throw new UsageError(`${path}: expected a tensor named "input" or a single tensor`);
  if (raw.shape.length !== 4 || raw.shape[1] !== 3) throw new UsageError(`${path}: input must be NCHW [N, 3, H, W]`);
  return { data: toFloat32(raw), shape: raw.shape as [number, number, number, number] };
}

/** The logits of x as rows, read asynchronously (webgpu cannot read synchronously in Node). */
async function logitRows(model: ResNet18, x: tf.Tensor4D): Promise<number[][]> {
  const t = tf.tidy(() => model.forward(x));
  try {
    return await t.array();
  } finally {
    t.dispose();
  }
}

export async function logitsCommand(argv: string[], out: (s: string) => void): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      weights: { type: 'string' },
      input: { type: 'string' },
      'train-step': { type: 'string' },
      backend: { type: 'string' },
      lr: { type: 'string' },
      momentum: { type: 'string' },
    },
    strict: true,
  });
  if (!values.weights || !values.input) throw new UsageError('logits needs --weights and --input');
  const backend = await selectBackend(backendOf(values.backend, 'wasm'));
  const weightBytes = new Uint8Array(await readFile(values.weights));
  const fcBias = stateDictFromSafetensors(weightBytes).dict.get('fc.bias');
  if (!fcBias) throw new UsageError(`${values.weights} has no fc.bias`);
  const model = new ResNet18(fcBias.shape[0]!);
  loadSafetensors(model, weightBytes);
  const input = await readInput(values.input);
  const [n, , h, w] = input.shape;
  const nhwc = nchwToNhwc(input.data, input.shape);
  const x = tf.tensor4d(nhwc, [n, h, w, 3]);
  const logits = await logitRows(model, x);
  const result: Record<string, unknown> = { backend, numClasses: model.numClasses, logits };
  if (values['train-step']) {
    const labels = JSON.parse(await readFile(values['train-step'], 'utf8')) as unknown;
    if (!Array.isArray(labels) || labels.length !== n || !labels.every((l) => Number.isInteger(l)))
      throw new UsageError(`--train-step must be a JSON array of ${n} integer labels`);
    if (h !== w) throw new UsageError('--train-step needs a square input');
    const optimizer = new Sgd({
      momentum: numberOf(values.momentum, 0.9, '--momentum'),
      weightDecay: 0,
      nesterov: false,
    });
    const plan = freezePlan({ mode: 'full' }, model);
    const step = trainStep(
      model,
      optimizer,
      plan,
      { x: nhwc, y: Int32Array.from(labels as number[]), n },
      {
        imageSize: h,
        lr: numberOf(values.lr, 0.1, '--lr'),
        labelSmoothing: 0,
        gradClipNorm: null,
        gradNormsOf: ['fc.weight', 'conv1.weight'],
      },
    );
    result['trainStep'] = {
      loss: (await step.loss.data())[0],
      gradNorms: Object.fromEntries(
        await Promise.all([...step.gradNorms].map(async ([k, v]) => [k, (await v.data())[0]] as const)),
      ),
      bn1RunningVar: [...(await model.variable('bn1.running_var').data())],
      logitsAfterStep: await logitRows(model, x),
    };
    disposeStep(step);
    optimizer.dispose();
  }
  x.dispose();
  model.dispose();
  out(JSON.stringify(result));
}

function modelStore(location: string): { store: ObjectStore; prefix: string } {
  if (!location.startsWith('s3://')) return { store: dirStore(location), prefix: '' };
  const { bucket, key } = parseS3Uri(location);
  return { store: s3Store(createS3Client(parseS3Env(process.env)), bucket), prefix: key };
}

async function readImage(ref: string): Promise<Uint8Array> {
  if (!ref.startsWith('s3://')) return new Uint8Array(await readFile(ref));
  const { bucket, key } = parseS3Uri(ref);
  return getObjectBytes(createS3Client(parseS3Env(process.env)), bucket, key);
}

export async function predictCommand(argv: string[], out: (s: string) => void): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { model: { type: 'string' }, top: { type: 'string' }, backend: { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (!values.model || positionals.length === 0) throw new UsageError('predict needs --model and at least one image');
  await selectBackend(backendOf(values.backend, 'wasm'));
  const { store, prefix } = modelStore(values.model);
  const bundle = await loadModelBundle(store, prefix);
  const top = Math.max(1, Math.floor(numberOf(values.top, 5, '--top')));
  try {
    for (const image of positionals)
      out(JSON.stringify({ image, top: await classify(bundle, await readImage(image), top) }));
  } finally {
    bundle.model.dispose();
  }
}

export async function runCli(
  argv: string[],
  out: (s: string) => void = (s) => process.stdout.write(`${s}\n`),
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === 'logits') await logitsCommand(rest, out);
    else if (command === 'predict') await predictCommand(rest, out);
    else throw new UsageError('usage: cli.ts logits|predict … (see the header of apps/trainer/src/cli.ts)');
    return 0;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}

if (require.main === module) {
  runCli(process.argv.slice(2)).then((code) => process.exit(code));
}
