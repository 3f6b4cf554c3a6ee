/**
 * Correctness and speed of one TF.js backend on the real ResNet18 code: parity with torchvision's fixture (eval
 * logits at 64 and 224 px, one SGD step), then throughput of full fine-tuning and inference.
 *
 *   node --import tsx bench/trainer/backend-check.ts --backend wasm --fixture apps/trainer/test/fixtures/resnet18 \
 *     [--sizes 32,224] [--batch 32] [--steps 5]
 *
 * On a lent GPU machine it runs bundled (bench/trainer/gpu.sh). Prints human lines, then one JSON line.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Backend } from '@gpulab/core';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../apps/trainer/src/backends';
import { nchwToNhwc, referenceInput, referenceStateDict } from '../../apps/trainer/src/model/reference-init';
import { ResNet18 } from '../../apps/trainer/src/model/resnet18';
import { loadStateDict } from '../../apps/trainer/src/model/weights';
import { freezePlan } from '../../apps/trainer/src/train/freeze';
import { Sgd } from '../../apps/trainer/src/train/optimizers';
import { disposeStep, trainStep } from '../../apps/trainer/src/train/step';
import { relError } from '../../apps/trainer/test/helpers/reference';
import { measureInfer, measureTrain } from './measure';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    fixture: { type: 'string', default: path.resolve('apps', 'trainer', 'test', 'fixtures', 'resnet18') },
    sizes: { type: 'string', default: '32,224' },
    batch: { type: 'string', default: '32' },
    steps: { type: 'string', default: '5' },
    card: { type: 'string', default: '' },
    'dawn-flags': { type: 'string', default: '' },
    'feature-level': { type: 'string', default: 'core' },
  },
});

interface Ref {
  seed: number;
  num_classes: number;
  eval_logits_224: number[];
  eval_logits_64: number[];
  train_loss_step1: number;
  grad_norm_fc_weight: number;
  grad_norm_conv1_weight: number;
  bn1_running_var_after_step: number[];
  eval_logits_64_after_step: number[];
}

const rel = relError;

async function parity(ref: Ref) {
  const model = new ResNet18(ref.num_classes);
  loadStateDict(model, referenceStateDict(ref.seed, ref.num_classes));
  const input = (name: string, n: number, s: number) =>
    nchwToNhwc(referenceInput(name, [n, 3, s, s], ref.seed), [n, 3, s, s]);
  const logits = async (x: Float32Array, n: number, s: number) => {
    const t = tf.tidy(() => model.forward(tf.tensor4d(x, [n, s, s, 3])));
    const v = await t.data();
    t.dispose();
    return v;
  };
  const out: Record<string, number> = {};
  out.eval224 = rel(await logits(input('input224', 2, 224), 2, 224), ref.eval_logits_224);
  const x64 = input('input64', 4, 64);
  out.eval64 = rel(await logits(x64, 4, 64), ref.eval_logits_64);
  const opt = new Sgd({ momentum: 0.9, weightDecay: 0, nesterov: false });
  const step = trainStep(
    model,
    opt,
    freezePlan({ mode: 'full' }, model),
    { x: x64, y: Int32Array.of(1, 3, 5, 7), n: 4 },
    {
      imageSize: 64,
      lr: 0.1,
      labelSmoothing: 0,
      gradClipNorm: null,
      gradNormsOf: ['fc.weight', 'conv1.weight'],
    },
  );
  out.loss = rel([(await step.loss.data())[0]!], [ref.train_loss_step1]);
  out.gradFc = rel([(await step.gradNorms.get('fc.weight')!.data())[0]!], [ref.grad_norm_fc_weight]);
  out.gradConv1 = rel([(await step.gradNorms.get('conv1.weight')!.data())[0]!], [ref.grad_norm_conv1_weight]);
  disposeStep(step);
  out.bn1Var = rel([...(await model.variable('bn1.running_var').data())].slice(0, 8), ref.bn1_running_var_after_step);
  out.eval64AfterStep = rel(await logits(x64, 4, 64), ref.eval_logits_64_after_step);
  opt.dispose();
  model.dispose();
  return out;
}

async function throughput(size: number, batch: number, steps: number) {
  const trainImgS = (await measureTrain(size, batch, steps, 'full')).imgS;
  const inferImgS = (await measureInfer(size, batch, steps)).imgS;
  return { size, batch, steps, trainImgS, inferImgS };
}

async function main() {
  const backend = await selectBackend(args.backend as Backend, {
    webgpu: {
      dawnFlags: args['dawn-flags'] ? args['dawn-flags'].split(',') : [],
      featureLevel: args['feature-level'] as 'core' | 'compatibility',
    },
  });
  console.log(`backend: ${backend}`);
  const ref = JSON.parse(readFileSync(path.join(args.fixture!, 'reference-seed1.json'), 'utf8')) as Ref;
  const p = await parity(ref);
  for (const [k, v] of Object.entries(p)) console.log(`parity ${k}: relative error ${v.toExponential(2)}`);
  const parityOk = p.eval224! < 1e-4 && p.eval64! < 1e-4 && Object.values(p).every((v) => v < 1e-3);
  const runs = [];
  for (const size of args.sizes!.split(',').map(Number)) {
    const r = await throughput(size, Number(args.batch), Number(args.steps));
    console.log(`${size} px, batch ${r.batch}: full fine-tune ${r.trainImgS} img/s, inference ${r.inferImgS} img/s`);
    runs.push(r);
  }
  console.log(
    JSON.stringify({
      bench: 'backend-check',
      backend,
      card: args.card || null,
      parity: p,
      parityOk,
      runs,
      node: process.version,
      cpus: os.cpus().length,
      date: new Date().toISOString().slice(0, 10),
    }),
  );
  if (!parityOk) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
