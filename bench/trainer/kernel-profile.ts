/**
 * Where a webgpu training step's GPU time goes: one full fine-tuning step and one inference batch of the trainer's
 * own code, every dispatch timed on the GPU with timestamp queries (tf.time; this repository's kernels are timed the
 * same way, webgpu-direct.ts), summed by program. Needs the adapter's timestamp-query feature (Dawn: allow_unsafe_apis,
 * and no quantization for sub-100 µs kernels):
 *
 *   node --import tsx bench/trainer/kernel-profile.ts --size 224 --batch 32 \
 *     --dawn-flags enable-dawn-features=allow_unsafe_apis,disable-dawn-features=timestamp_quantization [--card NAME]
 *
 * Each dispatch runs alone in its pass here (no overlap), so the sum is an upper bound on the step's GPU time, and
 * the share of each program is what matters. Prints a table per phase, then one JSON line.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../apps/trainer/src/backends';
import { type ConvForwardChoice, chooseConvForward } from '../../apps/trainer/src/backends/webgpu-kernels';
import { ResNet18 } from '../../apps/trainer/src/model/resnet18';
import { freezePlan } from '../../apps/trainer/src/train/freeze';
import { Sgd } from '../../apps/trainer/src/train/optimizers';
import { disposeStep, trainStep } from '../../apps/trainer/src/train/step';

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '224' },
    batch: { type: 'string', default: '32' },
    'dawn-flags': { type: 'string', default: '' },
    card: { type: 'string', default: '' },
    top: { type: 'string', default: '25' },
  },
});

interface Row {
  name: string;
  count: number;
  ms: number;
}

/** TF.js's "name: ms, name: ms" profile string, summed by program name. */
function byProgram(info: tf.TimingInfo): Row[] {
  const extra = (info as tf.TimingInfo & { getExtraProfileInfo?: () => string }).getExtraProfileInfo?.() ?? '';
  const rows = new Map<string, Row>();
  for (const part of extra.split(', ')) {
    const at = part.lastIndexOf(': ');
    if (at < 0) continue;
    const name = part.slice(0, at);
    const ms = Number(part.slice(at + 2));
    const r = rows.get(name) ?? { name, count: 0, ms: 0 };
    r.count++;
    r.ms += ms;
    rows.set(name, r);
  }
  return [...rows.values()].sort((a, b) => b.ms - a.ms);
}

function report(phase: string, rows: Row[], wallMs: number) {
  const total = rows.reduce((n, r) => n + r.ms, 0);
  const dispatches = rows.reduce((n, r) => n + r.count, 0);
  console.log(
    `${phase}: ${dispatches} dispatches, ${total.toFixed(2)} ms of GPU time (each alone), ${wallMs.toFixed(1)} ms wall`,
  );
  for (const r of rows.slice(0, Number(args.top)))
    console.log(
      `  ${r.name.padEnd(48)} ${String(r.count).padStart(4)} × ${(r.ms / r.count).toFixed(3).padStart(8)} ms = ${r.ms.toFixed(2).padStart(8)} ms (${((100 * r.ms) / total).toFixed(1)} %)`,
    );
  const round = (v: number) => Math.round(v * 1000) / 1000;
  return {
    dispatches,
    gpuMs: round(total),
    wallMs: round(wallMs),
    programs: rows.map((r) => ({ name: r.name, count: r.count, ms: round(r.ms) })),
  };
}

async function main() {
  const size = Number(args.size);
  const batch = Number(args.batch);
  await selectBackend('webgpu', {
    webgpu: { kernels: true, dawnFlags: args['dawn-flags'] ? args['dawn-flags'].split(',') : [] },
  });
  const b = tf.backend() as unknown as { supportTimestampQuery?: boolean };
  if (!b.supportTimestampQuery)
    console.log(
      'this adapter lacks timestamp-query (Dawn: --dawn-flags enable-dawn-features=allow_unsafe_apis): times are 0',
    );
  const model = new ResNet18(10);
  const opt = new Sgd({ momentum: 0.9, weightDecay: 0, nesterov: false });
  const plan = freezePlan({ mode: 'full' }, model);
  const x = new Float32Array(batch * size * size * 3).map((_, i) => Math.sin(i) * 0.5);
  const y = Int32Array.from({ length: batch }, (_, i) => i % 10);
  const step = () =>
    trainStep(
      model,
      opt,
      plan,
      { x, y, n: batch },
      { imageSize: size, lr: 0.01, labelSmoothing: 0, gradClipNorm: null },
    );
  try {
    const warm = step(); // first-use pipelines and buffers out of the timed step
    await warm.loss.data();
    disposeStep(warm);
    let r: ReturnType<typeof step> | null = null;
    const train = await tf.time(() => {
      r = step();
    });
    await r!.loss.data();
    disposeStep(r!);
    const xt = tf.tensor4d(x, [batch, size, size, 3]);
    const warmInfer = tf.tidy(() => model.forward(xt));
    await warmInfer.data();
    warmInfer.dispose();
    let logits: tf.Tensor | null = null;
    const infer = await tf.time(() => {
      logits = tf.tidy(() => model.forward(xt));
    });
    await logits!.data();
    (logits as tf.Tensor | null)?.dispose();
    // the same batch kernel by kernel (tf.profile: the kernel's name and input shapes, its GPU time), with the forward
    // convolution by TF.js's FusedConv2D and by ours (webgpu-conv-programs.ts convForward) everywhere
    const byKernel = async (choice: ConvForwardChoice) => {
      chooseConvForward(choice);
      try {
        const warm = tf.tidy(() => model.forward(xt));
        await warm.data();
        warm.dispose();
        const prof = await tf.profile(() => tf.tidy(() => model.forward(xt)));
        (prof.result as tf.Tensor).dispose();
        return prof.kernels.map((k) => ({
          kernel: k.name,
          inputShapes: k.inputShapes,
          ms: Math.round((k.kernelTimeMs as number) * 1000) / 1000,
        }));
      } finally {
        chooseConvForward('ours');
      }
    };
    const [tfjsConv, ourConv] = [await byKernel('tfjs'), await byKernel('ours')];
    const inferKernels = tfjsConv.map((k, i) => ({ ...k, tfjsMs: k.ms, oursMs: ourConv[i]?.ms ?? null }));
    console.log('inference by kernel (tf.profile), ms with TF.js / our forward convolution:');
    for (const k of inferKernels)
      console.log(
        `  ${k.kernel.padEnd(24)} ${JSON.stringify(k.inputShapes).padEnd(60)} ${k.tfjsMs.toFixed(3)} / ${k.oursMs?.toFixed(3)}`,
      );
    // The stem's 3 input channels keep TF.js's convolution off its vec4 path: the same stem with a zero 4th channel.
    const stem: Record<string, number> = {};
    for (const ci of [3, 4]) {
      const sx = tf.randomNormal([batch, size, size, ci]) as tf.Tensor4D;
      const sw = tf.randomNormal([7, 7, ci, 64]) as tf.Tensor4D;
      const sb = tf.zeros([64]) as tf.Tensor1D;
      const run = () => tf.fused.conv2d({ x: sx, filter: sw, strides: 2, pad: 3, bias: sb, activation: 'relu' });
      const w = run();
      await w.data();
      w.dispose();
      const prof = await tf.profile(run);
      (prof.result as tf.Tensor).dispose();
      stem[`stem_${ci}ch_ms`] =
        Math.round(prof.kernels.reduce((n, k) => n + (k.kernelTimeMs as number), 0) * 1000) / 1000;
      tf.dispose([sx, sw, sb]);
    }
    console.log(`stem convolution alone: ${JSON.stringify(stem)}`);
    const trainReport = report(`train step ${size} px, batch ${batch}`, byProgram(train), train.wallMs);
    const inferReport = report(`inference ${size} px, batch ${batch}`, byProgram(infer), infer.wallMs);
    console.log(
      JSON.stringify({
        bench: 'trainer-kernel-profile',
        date: new Date().toISOString().slice(0, 10),
        node: process.version,
        cpu: os.cpus()[0]?.model ?? null,
        card: args.card || null,
        timestampQuery: b.supportTimestampQuery === true,
        size,
        batch,
        train: trainReport,
        infer: inferReport,
        inferKernels,
        stem,
      }),
    );
    xt.dispose();
  } finally {
    opt.dispose();
    model.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
