/**
 * Trainer speed next to PyTorch on the same machine, in the same run: img/s of full, partial (layer4 + fc) and
 * head-only fine-tuning and of inference, at each size, batch 32 by default, random data, fp32.
 *
 *   node --import tsx bench/trainer/throughput.ts [--sizes 32,224] [--batch 32] [--steps 10] [--steps-224 3]
 *     [--modes full,partial,head] [--backend wasm] [--native auto|off|required] [--threads 2] [--python python3]
 *     [--torch-script bench/trainer/torch_resnet18.py] [--small-mflops 16]
 *     [--webgpu-kernels on|off] [--submit-batch 128] [--dawn-flags backend=opengles --feature-level compatibility]
 *     [--card NAME]
 *
 * TF.js runs the trainer's own code (bench/trainer/measure.ts) on `--backend` (wasm: with the native CPU kernels
 * unless --native off); PyTorch runs bench/trainer/torch_resnet18.py (Debian python3-torch, `--threads` threads) with
 * the same modes. On webgpu, `--webgpu-kernels off` runs TF.js's own kernels instead of this repository's
 * (src/backends/webgpu-kernels.ts), and each training figure comes with the dispatches and submits per step; the
 * Dawn flags and feature level let it run on Mesa's llvmpipe (GL ES) where there is no GPU (figures meaningless
 * there, but the code path is the GPU's). Each training figure also has the milliseconds per step spent recording
 * the step (in trainStep; on webgpu the GPU finishes the rest asynchronously). Prints a line per figure, then one JSON line with every figure and the
 * ratios TF.js / PyTorch.
 * Results: docs/benchmarks.md.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Backend } from '@gpulab/core';
import { nativeKernelsActive, selectBackend } from '../../apps/trainer/src/backends';
import { loadNativeKernels, type NativeMode } from '../../apps/trainer/src/backends/native-kernels';
import { type Mode, measureInfer, measureTrain } from './measure';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '32,224' },
    batch: { type: 'string', default: '32' },
    steps: { type: 'string', default: '10' },
    'steps-224': { type: 'string', default: '3' },
    modes: { type: 'string', default: 'full,partial,head' },
    backend: { type: 'string', default: 'wasm' },
    native: { type: 'string', default: 'auto' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    python: { type: 'string' },
    'torch-script': { type: 'string' },
    'small-mflops': { type: 'string' },
    'webgpu-kernels': { type: 'string', default: 'on' },
    'submit-batch': { type: 'string' },
    'dawn-flags': { type: 'string', default: '' },
    'feature-level': { type: 'string', default: 'core' },
    card: { type: 'string', default: '' },
  },
});

interface Run {
  size: number;
  mode: Mode;
  batch: number;
  steps: number;
  trainImgS: number;
  inferImgS?: number;
  inferDispatchesPerBatch?: number;
  /** webgpu: GPU dispatches and command submissions per training step. */
  recordMsPerStep: number;
  dispatchesPerStep?: number;
  submitsPerStep?: number;
}

/** A python3 that has torch and torchvision (Debian's /usr/bin/python3 when the PATH one lacks them). */
function findPython(): string | null {
  const candidates = args.python ? [args.python] : ['python3', '/usr/bin/python3'];
  for (const p of candidates) {
    const r = spawnSync(p, ['-c', 'import torch, torchvision'], { stdio: 'ignore' });
    if (r.status === 0) return p;
  }
  return null;
}

function loadAvg(): number {
  return Math.round(os.loadavg()[0]! * 100) / 100;
}

async function main() {
  const sizes = args.sizes!.split(',').map(Number);
  const modes = args.modes!.split(',') as Mode[];
  const batch = Number(args.batch);
  const stepsFor = (size: number) => (size >= 128 ? Number(args['steps-224']) : Number(args.steps));
  const load: number[] = [loadAvg()];
  const backend = await selectBackend(args.backend as Backend, {
    native: args.native as NativeMode,
    webgpu: {
      kernels: args['webgpu-kernels'] !== 'off',
      dawnFlags: args['dawn-flags'] ? args['dawn-flags'].split(',') : [],
      featureLevel: args['feature-level'] as 'core' | 'compatibility',
      ...(args['submit-batch'] ? { submitBatch: Number(args['submit-batch']) } : {}),
    },
  });
  const native = backend === 'wasm' && nativeKernelsActive();
  const threads = Number(args.threads);
  const small = args['small-mflops'] === undefined ? undefined : Number(args['small-mflops']);
  if (native) {
    const k = loadNativeKernels().kernels!;
    if (small === undefined) k.setThreads(threads);
    else k.setThreads(threads, small);
  }
  const kernels = backend === 'webgpu' ? (args['webgpu-kernels'] === 'off' ? 'tfjs' : 'gpulab') : undefined;
  console.log(
    `TF.js backend ${backend}${native ? ` + native kernels (${threads} BLAS threads)` : ''}${kernels ? ` (${kernels} kernels)` : ''}`,
  );
  const tfjs: Run[] = [];
  for (const size of sizes)
    for (const mode of modes) {
      const steps = stepsFor(size);
      const train = await measureTrain(size, batch, steps, mode);
      const run: Run = {
        size,
        mode,
        batch,
        steps,
        trainImgS: train.imgS,
        recordMsPerStep: train.recordMsPerStep,
        ...train.dispatches,
      };
      if (mode === 'full') {
        const infer = await measureInfer(size, batch, steps);
        run.inferImgS = infer.imgS;
        if (infer.dispatchesPerBatch) run.inferDispatchesPerBatch = infer.dispatchesPerBatch;
      }
      tfjs.push(run);
      load.push(loadAvg());
      console.log(
        `tfjs ${size} px ${mode}: train ${run.trainImgS} img/s${run.inferImgS ? `, inference ${run.inferImgS} img/s${run.inferDispatchesPerBatch ? ` (${run.inferDispatchesPerBatch} dispatches per batch)` : ''}` : ''}` +
          ` (${run.recordMsPerStep} ms/step recording` +
          (run.dispatchesPerStep
            ? `, ${run.dispatchesPerStep} dispatches, ${run.submitsPerStep} submits per step)`
            : ')'),
      );
    }

  const python = findPython();
  let torch: Run[] = [];
  let torchInfo: Record<string, unknown> | null = null;
  if (!python) console.log('PyTorch not found (apt-get install python3-torch python3-torchvision): no ratios');
  else
    for (const size of sizes) {
      const out = execFileSync(
        python,
        [
          args['torch-script'] ??
            path.join(typeof __dirname === 'string' ? __dirname : process.cwd(), 'torch_resnet18.py'),
          '--sizes',
          String(size),
          '--batch',
          String(batch),
          '--steps',
          String(Math.max(stepsFor(size), 3)),
          '--modes',
          modes.join(','),
          '--threads',
          String(threads),
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const lines = out.trim().split('\n');
      for (const l of lines.slice(0, -1)) console.log(l);
      const json = JSON.parse(lines.at(-1)!) as { runs: Run[] } & Record<string, unknown>;
      torch = torch.concat(json.runs);
      torchInfo = { device: json['device'], torch: json['torch'], threads: json['threads'] };
      load.push(loadAvg());
    }

  const ratios: Record<string, number> = {};
  for (const t of tfjs) {
    const p = torch.find((r) => r.size === t.size && r.mode === t.mode);
    if (!p) continue;
    ratios[`${t.mode}_${t.size}`] = Math.round((t.trainImgS / p.trainImgS) * 1000) / 1000;
    if (t.inferImgS && p.inferImgS) ratios[`infer_${t.size}`] = Math.round((t.inferImgS / p.inferImgS) * 1000) / 1000;
  }
  console.log(
    JSON.stringify({
      bench: 'trainer-throughput',
      date: new Date().toISOString().slice(0, 10),
      node: process.version,
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? null,
      backend,
      card: args.card || null,
      webgpu_kernels: kernels ?? null,
      native,
      threads,
      tfjs,
      pytorch: torchInfo ? { ...torchInfo, runs: torch } : null,
      ratios,
      load_avg_1m: { min: Math.min(...load), max: Math.max(...load) },
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
