/**
 * Trainer benchmark on Fashion-MNIST: the real trainer code path against PyTorch, same recipe, same machine, same run.
 *
 *   node --openssl-legacy-provider --import tsx bench/trainer/fashion-mnist.ts [--epochs 10] [--warmup-epochs 1] [--batch 128]
 *     [--lr 0.05] [--reference-epochs 2]
 *     [--data .gpulab/bench/fashion-mnist] [--python /usr/bin/python3] [--runs tfjs-full,pytorch-full,tfjs-head,...]
 *
 * Data: 6,000 train / 1,000 val 28×28 greyscale PNGs, 600 / 100 per class, all 10 classes (the first of each class in
 * Fashion-MNIST's train and test files), written by scripts/fashion-mnist-to-imagefolder.ts (which fetches Debian's
 * dataset-fashion-mnist when .gpulab/cache/fashion-mnist is empty) unless --data already holds them.
 *
 * Recipe (both frameworks): ResNet18 from random initialisation (torchvision's default init; pretrained ImageNet
 * weights cannot be downloaded here), 32 px; train transform Resize(37) → CenterCrop(32) → RandomHorizontalFlip,
 * val Resize(37) → CenterCrop(32), ImageNet normalisation; SGD lr 0.05, momentum 0.9, weight decay 5e-4, 10 epochs
 * with the trainer's `cosine` schedule per epoch and 1 linear warm-up epoch (lr 0.025, then cosine from 0.05 over the
 * other 9), batch 128, cross-entropy. Without the warm-up, 8 epochs left the trainer at 83.5 % (a loss spike in
 * epoch 2 at lr 0.048; docs/benchmarks.md). Runs, one after the other:
 *   tfjs-full            freeze 'full', through the trainer
 *   pytorch-full         bench/trainer/pytorch_fashion_mnist.py --mode full (torch.set_num_threads(2))
 *   tfjs-head            freeze 'head', through the trainer with its feature cache (on by default for head-only)
 *   tfjs-head-uncached   the same job with the cache off, stopped after --reference-epochs epochs: the per-epoch cost
 *                        without the cache, and its metrics next to the cached run's for the same epochs
 *   pytorch-head         --mode head (backbone in eval mode under no_grad every step, no cache)
 *
 * "Through the trainer" means `train()` from apps/trainer/src/main.ts, in this process, against an embedded s3rver
 * (@gpulab/storage startEmbeddedS3) holding the uploaded dataset: dataset indexing, decode workers, the epoch loop,
 * checkpoints every epoch and the final model all run as in a job, on the wasm backend (the one this machine has).
 *
 * `--openssl-legacy-provider`: s3rver encrypts ListObjectsV2 continuation tokens with DES, which Node 20's OpenSSL 3
 * only offers from its legacy provider; without it any listing longer than 1,000 keys (this dataset has 7,000) fails
 * with an S3 InternalError (ERR_OSSL_EVP_UNSUPPORTED inside s3rver). The bench checks this before starting.
 *
 * Figures per run: wall_s = the epochs' own time (train + validation; for the trainer the sum of the epoch events'
 * `seconds`, which leave out checkpoint writes, as PyTorch's loop writes none), img_per_s = epochs × 6,000 / wall_s,
 * total_s = the whole train() call (index, init, checkpoints, model export) for the trainer, best val accuracy.
 * Prints human-readable lines, then one JSON line.
 *
 * `--recipe seed` runs the seed recipe head-only instead (runs tfjs-head,pytorch-head): the job spec's defaults —
 * 25 epochs, batch 32, SGD lr 0.001 momentum 0.9 no weight decay, StepLR(7, 0.1), RandomResizedCrop + flip — at 32 px
 * (224 px would take the PyTorch loop hours on 2 cores), and reports time to accuracy: the epoch seconds each run
 * needs until its val accuracy first reaches the target (the lower of the two best accuracies minus 0.5 point), and
 * PyTorch's time over the trainer's (≥ 1 means the trainer gets there first).
 */
import { spawn } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type JobSpec, JobSpecSchema } from '@gpulab/core';
import {
  createS3Client,
  EMBEDDED_S3_CREDENTIALS,
  ensureBucket,
  startEmbeddedS3,
  uploadImageFolder,
} from '@gpulab/storage';
import type { TrainerConfig } from '../../apps/trainer/src/config';
import type { TrainerEvent } from '../../apps/trainer/src/events';
import { createLogger } from '../../apps/trainer/src/log';
import { train } from '../../apps/trainer/src/main';
import {
  ensureDebianFashionMnist,
  FASHION_MNIST_CLASSES,
  writeImageFolder,
} from '../../scripts/fashion-mnist-to-imagefolder';

const REPO = path.resolve(__dirname, '..', '..');
const BUCKET = 'bench';
const TRAIN_PER_CLASS = 600;
const VAL_PER_CLASS = 100;

const { values: args } = parseArgs({
  options: {
    epochs: { type: 'string', default: '10' },
    'warmup-epochs': { type: 'string', default: '1' },
    batch: { type: 'string', default: '128' },
    lr: { type: 'string', default: '0.05' },
    'reference-epochs': { type: 'string', default: '2' },
    data: { type: 'string', default: path.join(REPO, '.gpulab', 'bench', 'fashion-mnist') },
    python: { type: 'string', default: existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3' },
    runs: { type: 'string' },
    recipe: { type: 'string', default: 'fashion' },
  },
});

/** The seed recipe (job-spec defaults), head-only: see the header. */
const SEED = args.recipe === 'seed';
if (!SEED && args.recipe !== 'fashion') throw new Error(`--recipe must be fashion or seed, got ${args.recipe}`);
const EPOCHS = SEED && args.epochs === '10' ? 25 : Number(args.epochs);
const BATCH = SEED && args.batch === '128' ? 32 : Number(args.batch);
const LR = SEED && args.lr === '0.05' ? 0.001 : Number(args.lr);
const WARMUP = SEED ? 0 : Number(args['warmup-epochs']);
const WEIGHT_DECAY = SEED ? 0 : 5e-4;
args.runs ??= SEED ? 'tfjs-head,pytorch-head' : 'tfjs-full,pytorch-full,tfjs-head,tfjs-head-uncached,pytorch-head';
const REFERENCE_EPOCHS = Math.min(Number(args['reference-epochs']), EPOCHS);
const RUNS = new Set(args.runs!.split(','));
const TRAIN_IMAGES = TRAIN_PER_CLASS * FASHION_MNIST_CLASSES.length;

interface EpochFigures {
  epoch: number;
  trainLoss: number;
  valLoss: number;
  valAcc: number;
  seconds: number;
}

interface RunResult {
  epochs: number;
  wall_s: number;
  img_per_s: number;
  best_val_acc: number;
  best_epoch: number;
  val_acc: number[];
  epoch_s: number[];
  total_s?: number;
  feature_cache?: { computed: number; reused: number; bytes: number };
  history?: EpochFigures[];
}

const round = (v: number, d = 2) => Math.round(v * 10 ** d) / 10 ** d;
const say = (line: string) => console.log(line);

async function ensureData(dir: string): Promise<void> {
  const complete = FASHION_MNIST_CLASSES.every(
    (c) => existsSync(path.join(dir, 'train', c)) && existsSync(path.join(dir, 'val', c)),
  );
  if (complete) return;
  const idx = ensureDebianFashionMnist(path.join(REPO, '.gpulab', 'cache', 'fashion-mnist'));
  const counts = await writeImageFolder({
    idxDir: idx,
    outDir: dir,
    classes: [...FASHION_MNIST_CLASSES],
    trainPerClass: TRAIN_PER_CLASS,
    valPerClass: VAL_PER_CLASS,
  });
  say(`wrote ${counts.train} train / ${counts.val} val images to ${dir}`);
}

function specFor(mode: 'full' | 'head'): JobSpec {
  return JobSpecSchema.parse({
    name: `fashion-mnist ${mode}`,
    dataset: { uri: `s3://${BUCKET}/datasets/fashion-mnist/` },
    model: { pretrained: null },
    imageSize: 32,
    epochs: EPOCHS,
    batchSize: BATCH,
    optimizer: { type: 'sgd', lr: LR, momentum: 0.9, weightDecay: WEIGHT_DECAY },
    schedule: SEED ? { type: 'step', stepSize: 7, gamma: 0.1 } : { type: 'cosine', warmupEpochs: WARMUP },
    freeze: { mode },
    augmentation: { randomResizedCrop: SEED, horizontalFlip: true },
    seed: 42,
    backend: 'wasm',
  });
}

function summarise(history: EpochFigures[], extra: Partial<RunResult> = {}): RunResult {
  const wall = history.reduce((s, h) => s + h.seconds, 0);
  let best = history[0]!;
  for (const h of history) if (h.valAcc > best.valAcc) best = h;
  return {
    epochs: history.length,
    wall_s: round(wall),
    img_per_s: round((history.length * TRAIN_IMAGES) / wall),
    best_val_acc: best.valAcc,
    best_epoch: best.epoch,
    val_acc: history.map((h) => h.valAcc),
    epoch_s: history.map((h) => round(h.seconds)),
    ...extra,
  };
}

async function trainerRun(
  name: string,
  config: TrainerConfig,
  spec: JobSpec,
  opts: { featureCache?: false; stopAfterEpochs?: number } = {},
): Promise<RunResult> {
  const history: EpochFigures[] = [];
  let cacheStats: RunResult['feature_cache'];
  const log = createLogger({
    level: 'info',
    write: (line) => {
      const r = JSON.parse(line) as {
        msg: string;
        level: string;
        epoch?: number;
        featureCache?: RunResult['feature_cache'];
      };
      if (r.msg === 'epoch done' && r.featureCache) {
        cacheStats = r.featureCache;
        say(
          `[${name}]   feature cache after epoch ${r.epoch}: backbone computed ${cacheStats.computed} images, ` +
            `reused ${cacheStats.reused} (cumulative), ${(cacheStats.bytes / 2 ** 20).toFixed(1)} MiB held`,
        );
      }
      if (r.level === 'warn' || r.level === 'error') process.stderr.write(line);
    },
  });
  const emit = async (e: TrainerEvent) => {
    if (e.type !== 'epoch') return;
    history.push({ epoch: e.epoch, trainLoss: e.trainLoss, valLoss: e.valLoss, valAcc: e.valAcc, seconds: e.seconds });
    say(
      `[${name}] epoch ${e.epoch}/${e.epochs} lr ${e.lr.toFixed(5)} train loss ${e.trainLoss.toFixed(4)} ` +
        `val loss ${e.valLoss.toFixed(4)} val acc ${(100 * e.valAcc).toFixed(2)}% (${e.seconds.toFixed(1)} s)`,
    );
  };
  const started = performance.now();
  const code = await train(config, spec, {
    log,
    emit,
    print: () => {},
    stopRequested: () => opts.stopAfterEpochs !== undefined && history.length >= opts.stopAfterEpochs,
    ...(opts.featureCache === false ? { featureCache: false as const } : {}),
  });
  const total = (performance.now() - started) / 1000;
  const expected = opts.stopAfterEpochs === undefined ? 0 : 12; // TrainerExit.SUCCESS / STOPPED
  if (code !== expected) throw new Error(`${name}: trainer exited with ${code}`);
  return summarise(history, {
    total_s: round(total),
    ...(cacheStats ? { feature_cache: cacheStats } : {}),
    history,
  });
}

function pytorchRun(name: string, mode: 'full' | 'head', data: string): Promise<RunResult> {
  const script = path.join(__dirname, 'pytorch_fashion_mnist.py');
  const argv = [script, '--data', data, '--mode', mode, '--epochs', String(EPOCHS), '--batch', String(BATCH)];
  argv.push(
    '--lr',
    String(LR),
    '--warmup-epochs',
    String(WARMUP),
    '--momentum',
    '0.9',
    '--weight-decay',
    String(WEIGHT_DECAY),
    '--image-size',
    '32',
    '--threads',
    '2',
  );
  if (SEED) argv.push('--schedule', 'step', '--step-size', '7', '--gamma', '0.1', '--random-resized-crop');
  return new Promise((resolve, reject) => {
    const child = spawn(args.python!, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let buffered = '';
    let last = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.startsWith('{')) last = line;
        else if (line.length > 0) say(line.replace(/^\[pytorch \w+\]/, `[${name}]`));
        nl = buffered.indexOf('\n');
      }
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0 || !last) return reject(new Error(`${name}: python exited with ${code}`));
      const r = JSON.parse(last) as {
        wall_s: number;
        img_per_s: number;
        best_val_acc: number;
        best_epoch: number;
        val_acc: number[];
        epoch_s: number[];
        torch: string;
        threads: number;
      };
      resolve({
        epochs: r.val_acc.length,
        wall_s: r.wall_s,
        img_per_s: r.img_per_s,
        best_val_acc: r.best_val_acc,
        best_epoch: r.best_epoch,
        val_acc: r.val_acc,
        epoch_s: r.epoch_s,
      });
    });
  });
}

/**
 * Seconds of epochs each run needs until its val accuracy first reaches the target (the lower of the two best
 * accuracies minus 0.5 point), and PyTorch's time over the trainer's.
 */
function timeToTarget(tfjs: RunResult | undefined, torch: RunResult | undefined) {
  if (!tfjs || !torch) return null;
  const target = round(Math.min(tfjs.best_val_acc, torch.best_val_acc) - 0.005, 4);
  const until = (x: RunResult) => {
    let t = 0;
    for (let i = 0; i < x.val_acc.length; i++) {
      t += x.epoch_s[i]!;
      if (x.val_acc[i]! >= target) return { seconds: round(t), epoch: i + 1 };
    }
    return null;
  };
  const a = until(tfjs);
  const b = until(torch);
  return { target, tfjs: a, pytorch: b, pytorch_over_tfjs: a && b ? round(b.seconds / a.seconds, 3) : null };
}

/** s3rver's continuation tokens need DES (see the header): true when this process can create that cipher. */
function desAvailable(): boolean {
  try {
    createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
    return true;
  } catch {
    return false;
  }
}

async function main() {
  if (!desAvailable())
    throw new Error(
      'run with `node --openssl-legacy-provider`: the embedded S3 cannot list more than 1,000 keys otherwise',
    );
  const data = path.resolve(args.data!);
  await ensureData(data);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gpulab-bench-fmnist-'));
  const server = await startEmbeddedS3({ directory: path.join(dir, 's3') });
  const s3 = createS3Client({
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    ...EMBEDDED_S3_CREDENTIALS,
  });
  const results: Record<string, RunResult> = {};
  const load: number[] = [];
  const sampleLoad = () => load.push(os.loadavg()[0]!);
  const loadTimer = setInterval(sampleLoad, 30_000);
  const benchStarted = performance.now();
  try {
    await ensureBucket(s3, BUCKET);
    const up = await uploadImageFolder(s3, BUCKET, 'datasets/fashion-mnist/', data);
    say(`uploaded ${up.keys.length} files to the embedded S3; ${os.cpus().length} CPUs, node ${process.version}`);
    say(
      SEED
        ? `recipe: seed (${EPOCHS} epochs, batch ${BATCH}, SGD lr ${LR} momentum 0.9, StepLR(7, 0.1), 32 px, ` +
            'RandomResizedCrop + flip), head-only'
        : `recipe: ${EPOCHS} epochs, batch ${BATCH}, SGD lr ${LR} momentum 0.9 wd 5e-4, cosine with ${WARMUP} ` +
            'warm-up epoch(s), 32 px, flip',
    );
    const config = (jobId: string): TrainerConfig => ({
      jobId,
      attempt: 1,
      api: null,
      nativeKernels: 'auto',
      s3: {
        endpoint: server.endpoint,
        region: 'us-east-1',
        bucket: BUCKET,
        accessKeyId: EMBEDDED_S3_CREDENTIALS.accessKeyId,
        secretAccessKey: EMBEDDED_S3_CREDENTIALS.secretAccessKey,
        forcePathStyle: true,
      },
    });
    if (RUNS.has('tfjs-full')) results['tfjs_full'] = await trainerRun('tfjs-full', config('full'), specFor('full'));
    if (RUNS.has('pytorch-full')) results['pytorch_full'] = await pytorchRun('pytorch-full', 'full', data);
    if (RUNS.has('tfjs-head')) results['tfjs_head'] = await trainerRun('tfjs-head', config('head'), specFor('head'));
    if (RUNS.has('tfjs-head-uncached'))
      results['tfjs_head_uncached'] = await trainerRun('tfjs-head-uncached', config('head-ref'), specFor('head'), {
        featureCache: false,
        stopAfterEpochs: REFERENCE_EPOCHS,
      });
    if (RUNS.has('pytorch-head')) results['pytorch_head'] = await pytorchRun('pytorch-head', 'head', data);
  } finally {
    clearInterval(loadTimer);
    s3.destroy();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  sampleLoad();

  const r = results;
  const ratio = (a: number | undefined, b: number | undefined) => (a && b ? round(a / b, 3) : null);
  const meanEpoch = (x: RunResult | undefined) => (x ? x.wall_s / x.epochs : undefined);
  // The cached and uncached head runs over the epochs both ran: their metrics must agree.
  let agreement: { epochs: number; max_loss_diff: number; same_val_acc: boolean } | null = null;
  if (r['tfjs_head']?.history && r['tfjs_head_uncached']?.history) {
    const ref = r['tfjs_head_uncached'].history;
    let maxDiff = 0;
    let sameAcc = true;
    ref.forEach((h, i) => {
      const c = r['tfjs_head']!.history![i]!;
      maxDiff = Math.max(maxDiff, Math.abs(h.trainLoss - c.trainLoss), Math.abs(h.valLoss - c.valLoss));
      sameAcc &&= h.valAcc === c.valAcc;
    });
    agreement = { epochs: ref.length, max_loss_diff: maxDiff, same_val_acc: sameAcc };
    say(
      `cache vs no cache over ${ref.length} epochs: max |Δloss| ${maxDiff.toExponential(2)}, ` +
        `val acc ${sameAcc ? 'identical' : 'DIFFERENT'}`,
    );
  }
  const ratios = {
    full_tfjs_over_pytorch_wall: ratio(r['tfjs_full']?.wall_s, r['pytorch_full']?.wall_s),
    head_tfjs_over_pytorch_wall: ratio(r['tfjs_head']?.wall_s, r['pytorch_head']?.wall_s),
    head_cache_speedup_per_epoch: ratio(meanEpoch(r['tfjs_head_uncached']), meanEpoch(r['tfjs_head'])),
    full_over_head_tfjs_wall: ratio(r['tfjs_full']?.wall_s, r['tfjs_head']?.wall_s),
  };
  for (const [k, v] of Object.entries(r))
    say(
      `${k}: ${v.epochs} epochs in ${v.wall_s} s (${v.img_per_s} img/s), best val acc ` +
        `${(100 * v.best_val_acc).toFixed(2)}% at epoch ${v.best_epoch}`,
    );
  say(`ratios: ${JSON.stringify(ratios)}`);
  const timeToAccuracy = timeToTarget(r['tfjs_head'], r['pytorch_head']);
  if (timeToAccuracy) say(`time to accuracy (head): ${JSON.stringify(timeToAccuracy)}`);
  for (const v of Object.values(r)) delete v.history;
  console.log(
    JSON.stringify({
      bench: 'trainer-fashion-mnist',
      date: new Date().toISOString().slice(0, 10),
      node: process.version,
      cpus: os.cpus().length,
      backend: 'wasm',
      train_images: TRAIN_IMAGES,
      val_images: VAL_PER_CLASS * FASHION_MNIST_CLASSES.length,
      recipe: SEED ? 'seed' : 'fashion',
      image_size: 32,
      epochs: EPOCHS,
      batch: BATCH,
      lr: LR,
      warmup_epochs: WARMUP,
      runs: r,
      cache_agreement: agreement,
      ratios,
      time_to_accuracy: timeToAccuracy,
      bench_wall_s: round((performance.now() - benchStarted) / 1000),
      load_avg_1m: { min: round(Math.min(...load)), max: round(Math.max(...load)) },
    }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
