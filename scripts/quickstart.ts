/**
 * `npm run quickstart`: the whole system on this machine, on embedded defaults — Postgres and Redis (already
 * checked by quickstart.sh), the API with an embedded S3 server, the scheduler with the local launcher — then a
 * demo student fine-tunes ResNet18 on the bundled Fashion-MNIST sample and the result is printed.
 *
 *   --keep-running   leave the API and scheduler up afterwards (Ctrl-C stops them)
 */
import { execFile } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { createDb, createUserToken, ensureUserWithQuota, setPassword } from '@gpulab/db';
import {
  createS3Client,
  EMBEDDED_S3_CREDENTIALS,
  getObjectBytes,
  listObjects,
  uploadImageFolder,
} from '@gpulab/storage';
import { freePort, prepareDatabase, REPO_ROOT, startLocalServices } from './local-stack';

const keepRunning = process.argv.includes('--keep-running');

async function main() {
  const t0 = Date.now();
  const dataDir = path.join(REPO_ROOT, '.gpulab', 'data');
  mkdirSync(dataDir, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    DATABASE_URL: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/gpulab',
    GPULAB_DATA_DIR: dataDir,
    GPULAB_API_PORT: String(await freePort(Number(process.env.GPULAB_API_PORT ?? 8080))),
    GPULAB_S3_EMBEDDED_PORT: String(await freePort(Number(process.env.GPULAB_S3_EMBEDDED_PORT ?? 9100))),
    GPULAB_REDIS_PREFIX: process.env.GPULAB_REDIS_PREFIX ?? 'gpulab',
    GPULAB_LOCAL_SLOTS: process.env.GPULAB_LOCAL_SLOTS ?? '1',
    GPULAB_SCHEDULER_INTERVAL_MS: '500',
  };
  step(`database ${env.DATABASE_URL}: creating if needed and applying migrations`);
  await prepareDatabase(env.DATABASE_URL!);

  step('starting the API (with embedded S3) and the scheduler (local launcher, 1 GPU slot)');
  const logs = (name: string) => createWriteStream(path.join(dataDir, `${name}.log`), { flags: 'a' });
  const services = await startLocalServices(env, logs);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await services.stop();
  };
  process.on('SIGINT', () => void stop().then(() => process.exit(130)));

  try {
    step('creating the demo student (demo@gpulab.local, 2 GPU-hours in group "demo-course")');
    const db = createDb(env.DATABASE_URL!);
    const { user } = await ensureUserWithQuota(db, {
      email: 'demo@gpulab.local',
      name: 'Demo Student',
      group: 'demo-course',
      grantSeconds: 2 * 3600,
      periodStart: new Date(Date.UTC(new Date().getUTCFullYear(), 0, 1)),
      periodEnd: new Date(Date.UTC(new Date().getUTCFullYear() + 1, 0, 1)),
    });
    const token = await createUserToken(db, user.id, 'quickstart');
    // local demo only: a known password so the dashboard can be tried at once (the account lives in .gpulab/)
    await setPassword(db, user.id, DEMO_PASSWORD);
    await db.$disconnect();
    const tokenFile = path.join(REPO_ROOT, '.gpulab', 'demo-token');
    writeFileSync(tokenFile, `${token.secret}\n`, { mode: 0o600 });

    step('uploading the bundled dataset examples/datasets/fashion-mini (4 classes, 160 train + 40 val images)');
    const s3 = createS3Client({
      endpoint: services.s3Endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      ...EMBEDDED_S3_CREDENTIALS,
    });
    const datasetDir = path.join(REPO_ROOT, 'examples', 'datasets', 'fashion-mini');
    await uploadImageFolder(s3, 'gpulab', 'datasets/fashion-mini', datasetDir);

    const spec = {
      name: 'quickstart: fashion-mini',
      dataset: { uri: 's3://gpulab/datasets/fashion-mini' },
      imageSize: 32,
      epochs: 6,
      batchSize: 16,
      freeze: { mode: 'full' },
      optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9 },
      schedule: { type: 'step', stepSize: 4, gamma: 0.1 },
      backend: 'wasm',
      seed: 7,
      resources: { gpus: 1, flavor: 'local', maxHours: 0.5 },
    };
    step('submitting the job: POST /v1/jobs');
    const api = async (method: string, url: string, body?: unknown) => {
      const res = await fetch(`${services.apiUrl}${url}`, {
        method,
        headers: { authorization: `Bearer ${token.secret}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json = (await res.json()) as Record<string, unknown>;
      if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    };
    const created = await api('POST', '/v1/jobs', spec);
    const jobId = String(created.id);
    console.log(`  job ${jobId} is ${created.status}`);

    let shown = 0;
    let lastStatus = '';
    let job: Record<string, unknown> = created;
    for (;;) {
      job = await api('GET', `/v1/jobs/${jobId}`);
      if (job.status !== lastStatus) {
        lastStatus = String(job.status);
        console.log(`  status: ${lastStatus}${job.statusMessage ? ` (${job.statusMessage})` : ''}`);
      }
      const metrics = job.metrics as Array<Record<string, number>>;
      for (; shown < metrics.length; shown++) {
        const m = metrics[shown]!;
        console.log(
          `  Epoch ${m.epoch}/${m.epochs} | Train Loss: ${m.trainLoss!.toFixed(4)} | Val Loss: ${m.valLoss!.toFixed(4)} | Val Acc: ${(m.valAcc! * 100).toFixed(2)}%`,
        );
      }
      if (['SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT', 'BUDGET_EXHAUSTED'].includes(lastStatus)) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const cost = job.cost as { gpuSeconds: number; amount: number };
    const summary = job.summary as { bestValAcc?: number; bestEpoch?: number } | null;
    const me = await api('GET', '/v1/me');
    const quota = (me.quotas as Array<{ usedHours: number; freeHours: number }>)[0];
    const modelDir = path.join(REPO_ROOT, '.gpulab', 'models', jobId);
    let predictions = '';
    if (job.status === 'SUCCEEDED') {
      step(`downloading the model to ${path.relative(REPO_ROOT, modelDir)} and classifying three validation images`);
      for (const o of await listObjects(s3, 'gpulab', `jobs/${jobId}/model/`)) {
        const file = path.join(modelDir, o.key.slice(`jobs/${jobId}/model/`.length));
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, await getObjectBytes(s3, 'gpulab', o.key));
      }
      const images = ['Bag', 'Sneaker', 'Trouser'].map((c) => {
        const dir = path.join(datasetDir, 'val', c);
        return path.join(dir, readdirSync(dir).sort()[0]!);
      });
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['--import', 'tsx', 'apps/trainer/src/cli.ts', 'predict', '--model', modelDir, '--top', '1', ...images],
        { cwd: REPO_ROOT, env, encoding: 'utf8' },
      );
      predictions = stdout
        .trim()
        .split('\n')
        .map((line, i) => {
          const r = JSON.parse(line) as { top?: Array<{ label: string; probability: number }> };
          const best = r.top?.[0];
          return `    ${path.relative(REPO_ROOT, images[i]!)} -> ${best ? `${best.label} (${(best.probability * 100).toFixed(1)}%)` : line}`;
        })
        .join('\n');
    }
    s3.destroy();
    console.log(`
=== job ${jobId}: ${job.status} in ${((Date.now() - t0) / 1000).toFixed(0)} s (whole quickstart)
  best val accuracy : ${summary?.bestValAcc !== undefined ? `${(summary.bestValAcc * 100).toFixed(2)}% (epoch ${summary.bestEpoch})` : 'n/a'}
  cost              : ${cost.gpuSeconds} GPU-seconds = ${cost.amount.toFixed(4)} credits (local flavor, 1.00/GPU-hour)
  quota             : ${quota?.usedHours.toFixed(4)} GPU-h used, ${quota?.freeHours.toFixed(4)} GPU-h free
  model             : s3://gpulab/jobs/${jobId}/model/ (downloaded to ${path.relative(REPO_ROOT, modelDir)}:
                      weights.safetensors for PyTorch, tfjs/model.json for TensorFlow.js, labels, preprocessing)
  predictions       :
${predictions || '    (none: the job did not succeed)'}
  predict yourself  : node --import tsx apps/trainer/src/cli.ts predict --model ${path.relative(REPO_ROOT, modelDir)} IMAGE...
  job details       : curl -H "Authorization: Bearer $(cat .gpulab/demo-token)" ${services.apiUrl}/v1/jobs/${jobId}
  from a terminal   : GPULAB_URL=${services.apiUrl} GPULAB_TOKEN=$(cat .gpulab/demo-token) npm run -s gpulab -- status ${jobId}
  dashboard         : ${services.apiUrl}/ (with --keep-running), sign in as demo@gpulab.local / ${DEMO_PASSWORD}
  trainer log       : ${path.relative(REPO_ROOT, path.join(dataDir, 'logs', jobId))}/attempt-1.log
  service logs      : .gpulab/data/api.log, .gpulab/data/scheduler.log
`);
    if (job.status !== 'SUCCEEDED') process.exitCode = 1;
    if (keepRunning) {
      console.log(`API at ${services.apiUrl} (token in .gpulab/demo-token). Ctrl-C stops it.`);
      await new Promise(() => undefined);
    } else {
      console.log('Services stopped; `npm run quickstart -- --keep-running` leaves them up to explore.');
    }
  } finally {
    if (!keepRunning) await stop();
  }
}

/** The demo student's password in local mode (printed at the end; never used beyond this machine). */
const DEMO_PASSWORD = 'gpulab-demo-1234';

function step(msg: string) {
  console.log(`gpulab quickstart: ${msg}`);
}

main().catch((e) => {
  console.error(`quickstart failed: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
