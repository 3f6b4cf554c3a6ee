/**
 * Fine-tune on an ImageFolder with the typed SDK (@gpulab/sdk): upload the folder (only files the server lacks),
 * submit, follow the epochs, download the model.
 *
 *   GPULAB_URL=http://127.0.0.1:8080 GPULAB_TOKEN=gpl_… node --import tsx examples/submit.ts DIR [OUT]
 *   optional: EPOCHS (default 3), IMAGE_SIZE (224), FREEZE (head|full), MAX_HOURS (1)
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type DatasetFile, GpulabClient, uploadDataset } from '@gpulab/sdk';

const IMAGES = /\.(jpe?g|png|webp|gif|tiff?|bmp)$/i;

async function folderFiles(root: string): Promise<DatasetFile[]> {
  const out: DatasetFile[] = [];
  const walk = async (rel: string) => {
    for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.name.startsWith('.')) continue;
      if (e.isDirectory()) await walk(p);
      else if (IMAGES.test(e.name)) {
        const bytes = await readFile(path.join(root, p));
        out.push({
          path: p,
          size: (await stat(path.join(root, p))).size,
          sha256: createHash('sha256').update(bytes).digest('hex'),
          body: async () => new Uint8Array(bytes),
        });
      }
    }
  };
  for (const split of ['train', 'val']) await walk(split);
  return out;
}

async function main() {
  const [dir, outArg] = process.argv.slice(2);
  if (!dir) throw new Error('usage: submit.ts DIR [OUT]');
  const client = new GpulabClient({ baseUrl: process.env.GPULAB_URL!, token: process.env.GPULAB_TOKEN! });
  const { dataset, sent } = await uploadDataset(client, {
    name: path.basename(path.resolve(dir)),
    files: await folderFiles(dir),
  });
  console.log(`dataset ${dataset.id}: sent ${sent.blobs} file(s), ${sent.bytes} bytes`);

  const submitted = await client.jobs.submit(
    {
      name: 'submit.ts',
      dataset: { uri: dataset.uri },
      epochs: Number(process.env.EPOCHS ?? 3),
      imageSize: Number(process.env.IMAGE_SIZE ?? 224),
      freeze: { mode: (process.env.FREEZE ?? 'head') as 'head' | 'full' },
      resources: { maxHours: Number(process.env.MAX_HOURS ?? 1) },
    },
    { idempotencyKey: `submit-ts-${dataset.id}` },
  );
  console.log(`job ${submitted.id} submitted`);
  let shown = 0;
  const job = await client.jobs.wait(submitted.id, {
    intervalMs: 2000,
    onChange: (j) => {
      for (const m of j.metrics.slice(shown))
        console.log(
          `Epoch ${m.epoch}/${m.epochs} | Train Loss: ${m.trainLoss.toFixed(4)} | Val Loss: ${m.valLoss.toFixed(4)} | Val Acc: ${(m.valAcc * 100).toFixed(2)}%`,
        );
      shown = j.metrics.length;
    },
  });
  console.log(`job ${job.id} ${job.status} — ${job.statusMessage ?? ''}; cost ${job.cost.amount}`);
  if (job.status !== 'SUCCEEDED') process.exit(1);

  const out = outArg ?? `./model-${job.id}`;
  for (const f of (await client.jobs.artifacts(job.id)).model) {
    const res = await fetch(f.url);
    if (!res.ok) throw new Error(`download ${f.path}: HTTP ${res.status}`);
    await mkdir(path.dirname(path.join(out, f.path)), { recursive: true });
    await writeFile(path.join(out, f.path), Buffer.from(await res.arrayBuffer()));
  }
  console.log(`model in ${out}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
