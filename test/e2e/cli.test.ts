/**
 * The `gpulab` command line as a user runs it — a subprocess (`node --import tsx apps/cli/src/main.ts …`) — against
 * the whole stack in this process (API, scheduler, the real trainer as the local launcher's child, Postgres, Redis,
 * s3rver): log in, submit a dataset folder and follow it to SUCCEEDED, download and predict, a second submit of the
 * same folder sends no bytes (the server's counters say so), Ctrl-C detaches without cancelling, an interrupted
 * upload resumes, and the quota / quote / reservation commands.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setPassword } from '@gpulab/db';
import { GpulabClient, getUpload, uploadDataset } from '@gpulab/sdk';
import { REPO_ROOT } from '@gpulab/testing';
import { PNG } from 'pngjs';
import { scanFolder } from '../../apps/cli/src/dataset/folder';
import { contentDigest, defaultDatasetName, hashFiles, toDatasetFiles } from '../../apps/cli/src/dataset/hash';
import { saveUploadState, uploadStatePath } from '../../apps/cli/src/dataset/state';
import { type Stack, startStack } from './harness';

let stack: Stack;
let student: { userId: string; token: string };
let home: string;
let xdg: Record<string, string>;

beforeAll(async () => {
  stack = await startStack({ slots: 1, rateMicrosPerHour: 2_000_000 });
  student = await stack.addStudent('cli@uni.edu', 36_000);
  home = mkdtempSync(path.join(tmpdir(), 'gpulab-cli-'));
  xdg = {
    XDG_CONFIG_HOME: path.join(home, 'config'),
    XDG_STATE_HOME: path.join(home, 'state'),
    XDG_CACHE_HOME: path.join(home, 'cache'),
  };
});
afterAll(async () => {
  await stack?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...xdg, GPULAB_POLL_INTERVAL_MS: '200', ...extra };
  if (!extra.GPULAB_URL) delete env.GPULAB_URL;
  if (!extra.GPULAB_TOKEN) delete env.GPULAB_TOKEN;
  return env;
}

function start(args: string[], o: { input?: string; env?: Record<string, string> } = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'apps/cli/src/main.ts', ...args], {
    cwd: REPO_ROOT,
    env: cliEnv(o.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const run: Run = { code: null, signal: null, stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (run.stdout += d));
  child.stderr.on('data', (d) => (run.stderr += d));
  child.stdin.end(o.input ?? '');
  const done = new Promise<Run>((resolve) =>
    child.on('close', (code, signal) => resolve(Object.assign(run, { code, signal }))),
  );
  return { child, run, done };
}

const gpulab = (args: string[], o: { input?: string; env?: Record<string, string> } = {}) => start(args, o).done;

async function until<T>(what: string, f: () => Promise<T | null | undefined> | T | null | undefined, ms = 60_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** An 8×8 PNG: reddish noise for "cat", bluish for "dog" (distinct per seed). */
function png(seed: number, cls: string): Buffer {
  const img = new PNG({ width: 8, height: 8 });
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < 64; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const hot = 150 + (x & 63);
    const cold = (x >>> 8) & 63;
    img.data[i * 4] = cls === 'cat' ? hot : cold;
    img.data[i * 4 + 1] = (x >>> 16) & 63;
    img.data[i * 4 + 2] = cls === 'cat' ? cold : hot;
    img.data[i * 4 + 3] = 255;
  }
  return PNG.sync.write(img);
}

/** A 300×300 PNG of noise, stored without compression (~270 kB). */
function noisePng(seed: number): Buffer {
  const img = new PNG({ width: 300, height: 300 });
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < img.data.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    img.data.writeUInt32BE((x | 0xff) >>> 0, i);
  }
  return PNG.sync.write(img, { deflateLevel: 0, filterType: 0 });
}

function makeFolder(name: string, classes: string[], perClass: { train: number; val: number }, seed: number): string {
  const root = path.join(home, name);
  let n = seed;
  for (const split of ['train', 'val'] as const)
    for (const c of classes) {
      mkdirSync(path.join(root, split, c), { recursive: true });
      for (let i = 0; i < perClass[split]; i++) writeFileSync(path.join(root, split, c, `${i}.png`), png(n++, c));
    }
  return root;
}

const folderBytes = (root: string, files: string[]) => files.reduce((a, f) => a + statSync(path.join(root, f)).size, 0);
const EPOCH = /^Epoch 1\/1 \| Train Loss: \d+\.\d{4} \| Val Loss: \d+\.\d{4} \| Val Acc: \d+\.\d{2}%$/m;
const TRAIN = ['--epochs', '1', '--image-size', '32', '--batch-size', '4', '--freeze', 'full', '--backend', 'wasm'];
const sessionIdIn = (stderr: string) => /upload session ([0-9a-f-]{36})/.exec(stderr)?.[1];

describe('gpulab, the command line, end to end', () => {
  let pets: string;
  let jobId: string;

  it('logs in with a token and with a password, keeps the config private, logs out', async () => {
    const bad = await gpulab(['whoami']);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/not logged in.*\n.*gpulab login/);

    const byToken = await gpulab(['login', '--url', stack.apiUrl, '--token-stdin'], { input: `${student.token}\n` });
    expect(byToken.stderr).toBe('');
    expect(byToken.code).toBe(0);
    expect(byToken.stdout).toMatch(/Logged in to .* as cli@uni\.edu \(student\)/);
    const file = path.join(xdg.XDG_CONFIG_HOME!, 'gpulab', 'config.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ url: stack.apiUrl, token: student.token });

    await setPassword(stack.db, student.userId, 'correct horse battery staple');
    const byPassword = await gpulab(['login', '--email', 'cli@uni.edu', '--password-stdin', '--json'], {
      input: 'correct horse battery staple\n',
    });
    expect(byPassword.code).toBe(0);
    expect(JSON.parse(byPassword.stdout)).toMatchObject({ url: stack.apiUrl, user: { email: 'cli@uni.edu' } });
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    expect(saved.token).not.toBe(student.token);
    expect(saved.tokenId).toMatch(/^[0-9a-f-]{36}$/);
    const who = await gpulab(['whoami', '--json']);
    expect(JSON.parse(who.stdout)).toMatchObject({ email: 'cli@uni.edu', url: stack.apiUrl });

    const out = await gpulab(['logout', '--json']);
    expect(JSON.parse(out.stdout)).toMatchObject({ loggedOut: true, revoked: true });
    const revoked = await gpulab(['whoami'], { env: { GPULAB_URL: stack.apiUrl, GPULAB_TOKEN: saved.token } });
    expect(revoked.code).toBe(3);

    const wrong = await gpulab(['login', '--email', 'cli@uni.edu', '--password-stdin'], { input: 'nope nope nope' });
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toMatch(/email or password is wrong/);
    expect((await gpulab(['login', '--token-stdin'], { input: student.token })).code).toBe(0);
  });

  it('refuses a folder that is not an ImageFolder before sending anything, naming the path', async () => {
    const bad = makeFolder('one-class', ['cat'], { train: 2, val: 1 }, 900);
    writeFileSync(path.join(bad, 'train', 'cat', 'empty.png'), '');
    const r = await gpulab(['submit', bad, ...TRAIN]);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain(`${path.join(bad, 'train/cat/empty.png')} is empty`);
    expect(r.stderr).toMatch(/train\/ has 1 class folder \(cat\); a classifier needs at least 2/);
    expect(await stack.db.datasetUpload.count()).toBe(0);
    const usage = await gpulab(['submit', bad, '--freeze', 'some']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--freeze must be head, a number of stages 1-4, or full/);
  });

  it('submits a folder, uploads it, follows the job to SUCCEEDED with per-epoch lines, cost and the model', async () => {
    pets = makeFolder('pets', ['cat', 'dog'], { train: 4, val: 2 }, 1);
    const r = await gpulab(['submit', pets, ...TRAIN, '--max-hours', '0.25', '--name', 'cli e2e']);
    expect(r.stderr).not.toMatch(/error/);
    expect(r.code).toBe(0);
    jobId = /submitted job ([0-9a-f-]{36})/.exec(r.stdout)![1]!;
    expect(r.stdout).toMatch(EPOCH);
    expect(r.stdout).toMatch(/cost so far: [\d.]+ GPU-h/);
    expect(r.stdout).toContain(`job ${jobId} SUCCEEDED`);
    expect(r.stdout).toContain(`model: jobs/${jobId}/model/`);
    expect(r.stderr).toMatch(/12 images .* in 2 classes \(cat, dog\): 8 train, 4 val/);

    // The server's counters: every file was sent once, by this session.
    const session = await getUpload(
      new GpulabClient({ baseUrl: stack.apiUrl, token: student.token }),
      sessionIdIn(r.stderr)!,
    );
    const files = ['cat', 'dog'].flatMap((c) =>
      [0, 1, 2, 3].map((i) => `train/${c}/${i}.png`).concat([0, 1].map((i) => `val/${c}/${i}.png`)),
    );
    expect(session).toMatchObject({ status: 'completed', files: 12 });
    expect(session.transfer).toEqual({
      blobsUploaded: 12,
      bytesUploaded: folderBytes(pets, files),
      blobsReused: 0,
      bytesReused: 0,
      bytesRejected: 0,
    });
    const job = await stack.waitForStatus(student.token, jobId, ['SUCCEEDED'], 5_000);
    expect((job.spec as { dataset: { uri: string } }).dataset.uri).toMatch(
      /^s3:\/\/gpulab-test\/datasets\/.*\/pets-[0-9a-f]{8}\/$/,
    );
    expect(job.spec).toMatchObject({
      epochs: 1,
      imageSize: 32,
      batchSize: 4,
      freeze: { mode: 'full' },
      name: 'cli e2e',
    });
  });

  it('shows the job in the table, its status (by id prefix) and its logs', async () => {
    const table = await gpulab(['jobs']);
    expect(table.stdout).toMatch(new RegExp(`^${jobId.slice(0, 8)}\\s+cli e2e\\s+SUCCEEDED`, 'm'));
    const only = JSON.parse((await gpulab(['jobs', '--status', 'succeeded', '--json'])).stdout);
    expect(only.items.map((j: { id: string }) => j.id)).toEqual([jobId]);
    const st = await gpulab(['status', jobId.slice(0, 8)]);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/status: +SUCCEEDED/);
    expect(st.stdout).toMatch(/Epoch 1\/1 \| Train Loss: \d+\.\d{4}/);
    const logs = await gpulab(['logs', jobId]);
    expect(logs.stdout).toMatch(/Epoch 1\/1 \| Train Loss/);
    const follow = await gpulab(['logs', jobId, '-f']);
    expect(follow.code).toBe(0);
    expect(follow.stdout).toMatch(/Epoch 1\/1 \| Train Loss/);
    expect((await gpulab(['status', '00000000-0000-4000-8000-000000000000'])).code).toBe(4);
  });

  it('downloads the model and classifies images with it locally', async () => {
    const dest = path.join(home, 'model');
    const d = await gpulab(['download', jobId, '--dest', dest, '--json']);
    expect(d.code).toBe(0);
    const files = JSON.parse(d.stdout).files.map((f: { path: string }) => f.path);
    expect(files).toEqual(
      expect.arrayContaining([
        'weights.safetensors',
        'model.json',
        'labels.json',
        'preprocessing.json',
        'metrics.json',
      ]),
    );
    expect(JSON.parse(readFileSync(path.join(dest, 'labels.json'), 'utf8'))).toEqual(['cat', 'dog']);

    const images = [path.join(pets, 'val/cat/0.png'), path.join(pets, 'val/dog/1.png')];
    const p = await gpulab(['predict', jobId.slice(0, 8), ...images, '--top', '2', '--json']);
    expect(p.stderr).not.toMatch(/error/);
    expect(p.code).toBe(0);
    const results = JSON.parse(p.stdout) as { image: string; top: { label: string; probability: number }[] }[];
    expect(results.map((x) => x.image)).toEqual(images);
    for (const x of results) {
      expect(x.top.map((t) => t.label).sort()).toEqual(['cat', 'dog']);
      expect(x.top[0]!.probability + x.top[1]!.probability).toBeCloseTo(1, 4);
    }
    const fromDir = await gpulab(['predict', dest, images[0]!, '--top', '1']);
    expect(fromDir.stdout).toMatch(/val\/cat\/0\.png: (cat|dog) \d+\.\d%/);
  });

  it('a second submit of the same folder sends no bytes; Ctrl-C detaches and does not cancel', async () => {
    const name = 'cli e2e again';
    const c = start(['submit', pets, ...TRAIN, '--max-hours', '0.25', '--name', name, '--json']);
    const job = await until('the second job', () => stack.db.job.findFirst({ where: { name } }));
    c.child.kill('SIGINT');
    const r = await c.done;
    expect(r.code).toBe(130);
    expect(r.stderr).toContain(`gpulab status ${job.id} --follow`);
    expect(r.stderr).toContain(`gpulab logs ${job.id} -f`);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ detached: true, job: { id: job.id }, upload: { sent: { blobs: 0, bytes: 0 } } });
    // Server side: the session reused every blob and received nothing.
    const row = await stack.db.datasetUpload.findUniqueOrThrow({ where: { id: out.upload.id } });
    expect(row).toMatchObject({ status: 'completed', blobsUploaded: 0, blobsReused: 12 });
    expect(Number(row.bytesUploaded)).toBe(0);
    expect(out.upload.transfer).toMatchObject({ bytesUploaded: 0, blobsReused: 12 });

    const still = await stack.api<{ status: string }>(student.token, 'GET', `/v1/jobs/${job.id}`);
    expect(still.body.status).not.toBe('CANCELLED');
    const cancelled = await gpulab(['cancel', job.id, '--json']);
    expect(cancelled.code).toBe(0);
    await stack.waitForStatus(student.token, job.id, ['CANCELLED'], 60_000);
  });

  it('an interrupted upload resumes its session and sends only what is missing', async () => {
    const root = makeFolder('flowers', ['daisy', 'rose', 'tulip'], { train: 4, val: 2 }, 500);
    const scan = await scanFolder(root);
    const hashed = await hashFiles(cliEnv(), scan.root, scan.files);
    const digest = contentDigest(hashed);
    const name = defaultDatasetName(scan.root, digest);
    // A first run that stopped after 7 of 18 files (as Ctrl-C does), its session recorded as the CLI records it.
    const client = new GpulabClient({ baseUrl: stack.apiUrl, token: student.token });
    const stop = new AbortController();
    let sessionId = '';
    await expect(
      uploadDataset(client, {
        name,
        files: toDatasetFiles(hashed),
        concurrency: 1,
        signal: stop.signal,
        onSession: (s) => {
          sessionId = s.id;
          saveUploadState(cliEnv(), root, {
            sessionId: s.id,
            server: stack.apiUrl,
            name,
            digest,
            startedAt: new Date().toISOString(),
          });
        },
        onProgress: (p) => {
          if (p.sent.blobs >= 7) stop.abort();
        },
      }),
    ).rejects.toThrow();
    const half = await getUpload(client, sessionId);
    expect(half).toMatchObject({ status: 'open', files: 18, pending: { blobs: 11 } });

    const r = await gpulab(['submit', root, ...TRAIN, '--detach', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.upload).toMatchObject({ id: sessionId, resumed: true, sent: { blobs: 11 } });
    expect(out.upload.sent.bytes).toBe(half.pending.bytes);
    const row = await stack.db.datasetUpload.findUniqueOrThrow({ where: { id: sessionId } });
    expect(row).toMatchObject({ status: 'completed', blobsUploaded: 18, blobsReused: 0 });
    expect(Number(row.bytesUploaded)).toBe(scan.bytes);
    expect(JSON.parse(readFileSync(uploadStatePath(cliEnv()), 'utf8'))).toEqual({});
    await gpulab(['cancel', out.job.id]);
    await stack.waitForStatus(student.token, out.job.id, ['CANCELLED'], 60_000);
  });

  it('Ctrl-C during an upload keeps the session; running the command again resumes it', async () => {
    // 80 incompressible 300×300 PNGs (~22 MB) sent one at a time: long enough to interrupt.
    const root = path.join(home, 'noise');
    let n = 7000;
    for (const split of ['train', 'val'] as const)
      for (const c of ['x', 'y']) {
        mkdirSync(path.join(root, split, c), { recursive: true });
        for (let i = 0; i < (split === 'train' ? 30 : 10); i++)
          writeFileSync(path.join(root, split, c, `${i}.png`), noisePng(n++));
      }
    const args = ['submit', root, ...TRAIN, '--detach', '--concurrency', '1'];
    const first = start(args);
    const state = uploadStatePath(cliEnv());
    const recorded = await until('the session in the state file', () => {
      try {
        return (JSON.parse(readFileSync(state, 'utf8')) as Record<string, { sessionId: string }>)[root];
      } catch {
        return null;
      }
    });
    first.child.kill('SIGINT');
    const r1 = await first.done;
    expect(r1.code).toBe(130);
    expect(r1.stderr).toContain(`upload interrupted (session ${recorded.sessionId} kept)`);
    expect(r1.stderr).toMatch(/run the same command again to resume/);
    const client = new GpulabClient({ baseUrl: stack.apiUrl, token: student.token });
    const open = await getUpload(client, recorded.sessionId);
    expect(open.status).toBe('open');
    expect(open.pending.blobs).toBeGreaterThan(0);

    const r2 = await gpulab([...args, '--json']);
    expect(r2.code).toBe(0);
    const out = JSON.parse(r2.stdout);
    expect(out.upload).toMatchObject({ id: recorded.sessionId, resumed: true, sent: { blobs: open.pending.blobs } });
    expect(out.upload.transfer).toMatchObject({ blobsUploaded: 80, blobsReused: 0 });
    await gpulab(['cancel', out.job.id]);
    await stack.waitForStatus(student.token, out.job.id, ['CANCELLED'], 60_000);
  });

  it('shows the quota, quotes a job, books and cancels a reservation', async () => {
    const q = JSON.parse((await gpulab(['quota', '--json'])).stdout);
    expect(q.quotas[0]).toMatchObject({ group: { name: 'cs-e2e' }, grantedHours: 10 });
    expect((await gpulab(['quota'])).stdout).toMatch(/^cs-e2e\s+10\.0/m);

    const quote = await gpulab(['quote', pets, '--max-hours', '0.5', '--json']);
    expect(JSON.parse(quote.stdout)).toMatchObject({ gpuHours: 0.5, flavor: 'local', gpus: 1 });
    const spec = path.join(home, 'spec.json');
    writeFileSync(
      spec,
      JSON.stringify({ dataset: { uri: 's3://gpulab-test/datasets/x/' }, resources: { maxHours: 1 } }),
    );
    expect((await gpulab(['quote', spec])).stdout).toMatch(/hold: +1\.00 GPU-h \(1 × local\)/);

    const booked = await gpulab([
      'reserve',
      '--gpu',
      'local',
      '--count',
      '1',
      '--from',
      '+24h',
      '--to',
      '+26h',
      '--json',
    ]);
    expect(booked.code).toBe(0);
    const r = JSON.parse(booked.stdout);
    expect(r).toMatchObject({ status: 'booked', gpus: 1, flavor: 'local', bookedHours: 2 });
    expect((await gpulab(['reservations'])).stdout).toMatch(
      new RegExp(`^${r.id.slice(0, 8)}\\s+booked\\s+1×local`, 'm'),
    );
    const cancelled = JSON.parse((await gpulab(['reservations', 'cancel', r.id.slice(0, 8), '--json'])).stdout);
    expect(cancelled).toMatchObject({ id: r.id, status: 'cancelled' });
    const usage = await gpulab(['reserve', '--gpu', 'local', '--count', '1', '--from', 'tomorrow', '--to', '+2h']);
    expect(usage.code).toBe(2);
  });
});
