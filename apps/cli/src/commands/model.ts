/** download (a job's model files through the API) and predict (classify local images with it, on this machine). */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { GpulabClient } from '@gpulab/sdk';
import { downloadModel } from '../artifacts';
import { type Command, flag, num, str, usageError } from '../command';
import { cacheDir } from '../config';
import type { Ctx } from '../context';
import { CliError, EXIT } from '../exit-codes';
import { bytes } from '../format';
import { resolveJobId } from '../job-ref';

async function fetchModel(ctx: Ctx, client: GpulabClient, id: string, dest: string) {
  const job = await client.jobs.get(id);
  return downloadModel(client, job, dest, {
    signal: ctx.signal,
    onFile: (p, n) => ctx.note(`  ${p} (${bytes(n)})`),
  });
}

export const download: Command = {
  name: 'download',
  summary: "download a finished job's model (PyTorch safetensors, TensorFlow.js, labels, preprocessing)",
  usage: 'JOB [--dest DIR]',
  options: { dest: { type: 'string', arg: 'DIR', help: 'where to put the files (default ./models/<job id>)' } },
  positionals: { min: 1, max: 1, completes: 'jobs' },
  examples: [
    'gpulab download 3f2a9c1e',
    'gpulab download last --dest ./my-model',
    'python -c "import torchvision, safetensors.torch as st; m = torchvision.models.resnet18(num_classes=2); ' +
      "m.load_state_dict(st.load_file('my-model/weights.safetensors'))\"",
  ],
  async run(ctx, args) {
    const client = ctx.client();
    const id = await resolveJobId(client, args.positionals[0]!);
    const dest = str(args, 'dest') ?? path.join('models', id);
    ctx.note(`downloading the model of job ${id} to ${dest}`);
    const d = await fetchModel(ctx, client, id, dest);
    if (ctx.json) ctx.outJson({ jobId: id, ...d });
    else {
      ctx.out(
        `model of job ${id} in ${d.dir} (${d.files.length} files, ${bytes(d.files.reduce((n, f) => n + f.bytes, 0))})`,
      );
      ctx.out(`  classify images: gpulab predict ${d.dir} IMAGE…`);
    }
    return EXIT.OK;
  },
};

interface Prediction {
  image: string;
  top: { label: string; index: number; probability: number }[];
}

/** Runs the trainer's own predict command in this process; its output lines are JSON, one per image. */
async function runTrainerPredict(modelDir: string, images: string[], top: number, backend: string) {
  const { predictCommand } = await import('@gpulab/trainer/src/cli');
  const lines: string[] = [];
  // TensorFlow.js may print notices with console.*: keep stdout for results.
  const saved = { log: console.log, info: console.info, warn: console.warn };
  console.log = console.info = console.warn = (...a: unknown[]) => process.stderr.write(`${a.join(' ')}\n`);
  try {
    await predictCommand(['--model', modelDir, '--top', String(top), '--backend', backend, ...images], (s) =>
      lines.push(s),
    );
  } finally {
    Object.assign(console, saved);
  }
  return lines.map((l) => JSON.parse(l) as Prediction);
}

export const predict: Command = {
  name: 'predict',
  summary: "classify images on this machine with a job's model (downloaded once, then cached) or a model folder",
  usage: 'JOB|MODEL_DIR IMAGE… [--top N]',
  details: 'Models of jobs are cached in $XDG_CACHE_HOME/gpulab/models/<job id>/ (--refresh downloads again).',
  options: {
    top: { type: 'string', arg: 'N', help: 'show the N most likely classes (default 3)' },
    backend: { type: 'string', arg: 'NAME', help: 'wasm (default) or cpu', choices: ['wasm', 'cpu'] },
    refresh: { type: 'boolean', help: 'download the model again' },
  },
  positionals: { min: 2, max: 10_000, completes: 'files' },
  examples: [
    'gpulab predict 3f2a9c1e cat.jpg dog.png',
    'gpulab predict ./models/3f2a9c1e-… photos/*.jpg --top 1 --json',
  ],
  async run(ctx, args) {
    const [ref, ...images] = args.positionals as [string, ...string[]];
    const top = num('predict', args, 'top', { integer: true, min: 1, max: 1000 }) ?? 3;
    const backend = str(args, 'backend') ?? 'wasm';
    if (!['wasm', 'cpu'].includes(backend)) throw usageError('predict', '--backend must be wasm or cpu');
    for (const img of images)
      if (!(await stat(img).catch(() => null))?.isFile())
        throw new CliError(`no such image: ${img}`, EXIT.NOT_FOUND, 'give paths of image files on this machine');
    let modelDir: string;
    if (existsSync(path.join(ref, 'model.json'))) modelDir = ref;
    else {
      const client = ctx.client();
      const id = await resolveJobId(client, ref);
      modelDir = path.join(cacheDir(ctx.env), 'models', id);
      if (flag(args, 'refresh') || !existsSync(path.join(modelDir, 'model.json'))) {
        ctx.note(`downloading the model of job ${id} to ${modelDir}`);
        await fetchModel(ctx, client, id, modelDir);
      }
    }
    const results = await runTrainerPredict(modelDir, images, top, backend);
    if (ctx.json) ctx.outJson(results);
    else
      for (const r of results) {
        const [best, ...rest] = r.top;
        const pct = (p: number) => `${(p * 100).toFixed(1)}%`;
        const others = rest.map((t) => `${t.label} ${pct(t.probability)}`).join(', ');
        ctx.out(`${r.image}: ${best ? `${best.label} ${pct(best.probability)}` : '?'}${others ? `  (${others})` : ''}`);
      }
    return EXIT.OK;
  },
};
