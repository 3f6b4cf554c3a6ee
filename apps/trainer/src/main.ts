/**
 * The trainer process (composition root). Reads its job from the environment (config.ts), trains, writes
 * checkpoints / model / metrics to S3, reports events to the API, and exits with a TrainerExit code:
 * 0 success, 10 user error, 11 infrastructure error (retry from the last checkpoint), 12 stopped by SIGTERM after
 * writing a checkpoint.
 *
 * Run: node --import tsx apps/trainer/src/main.ts
 */
import { createHash } from 'node:crypto';
import { type JobSpec, TrainerExit } from '@gpulab/core';
import { createS3Client } from '@gpulab/storage';
import { nativeKernelsActive, selectBackend } from './backends';
import { parseConfig, parseSpec, type TrainerConfig } from './config';
import { batches, createDecodePool, DATA_DEFAULTS, loadDatasetIndex } from './data';
import { type EventSink, httpEventSink, noEvents } from './events';
import { exitCodeFor } from './exit';
import { s3Store } from './io/object-store';
import { createLogger, type Logger, levelFromEnv, silentLogger } from './log';
import { initialiseWeights } from './model/initial-weights';
import { ResNet18 } from './model/resnet18';
import { writeArtifacts } from './train/artifacts';
import { CheckpointError, type CheckpointState, readLatest, restoreCheckpoint } from './train/checkpoint';
import { freezePlan } from './train/freeze';
import { runTraining, type TrainingDeps } from './train/loop';
import { createOptimizer } from './train/optimizers';

export function specDigest(spec: JobSpec): string {
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex');
}

export async function train(
  config: TrainerConfig,
  spec: JobSpec,
  deps: {
    log: Logger;
    stopRequested: () => boolean;
    print: (line: string) => void;
    emit?: EventSink;
    /** Head-only feature cache (train/feature-cache.ts): on by default; `false` for the reference path (benchmarks). */
    featureCache?: TrainingDeps['featureCache'];
  },
): Promise<number> {
  const { log } = deps;
  const { jobId, attempt } = config;
  const s3 = createS3Client(config.s3);
  const store = s3Store(s3, config.s3.bucket);
  const emit =
    deps.emit ??
    (config.api ? httpEventSink({ apiUrl: config.api.url, token: config.api.token, jobId, log }) : noEvents);

  const backend = await selectBackend(spec.backend, { native: config.nativeKernels });
  log.info('backend ready', {
    requested: spec.backend,
    backend,
    nativeKernels: backend === 'wasm' ? nativeKernelsActive() : false,
  });
  await emit({ type: 'started', attempt, backend });

  const index = await loadDatasetIndex(s3, spec.dataset.uri);
  log.info('dataset indexed', {
    classes: index.classes.length,
    train: index.train.length,
    val: index.val.length,
    skipped: index.skipped.length,
  });
  await emit({
    type: 'dataset',
    classes: index.classes,
    trainCount: index.train.length,
    valCount: index.val.length,
    skipped: index.skipped.length,
  });
  if (deps.stopRequested()) return TrainerExit.STOPPED;

  const model = new ResNet18(index.classes.length);
  const optimizer = createOptimizer(spec.optimizer);
  const pool = await createDecodePool({ workers: DATA_DEFAULTS.workers, maxPixels: DATA_DEFAULTS.maxPixels });
  try {
    let resume: CheckpointState | null = null;
    const latest = await readLatest(store, jobId);
    if (latest) {
      resume = await restoreCheckpoint(store, latest, model, optimizer);
      if (JSON.stringify(resume.classes) !== JSON.stringify(index.classes))
        throw new CheckpointError(`checkpoint classes ${JSON.stringify(resume.classes)} differ from the dataset's`);
      if (resume.specDigest !== specDigest(spec)) log.warn('resuming a checkpoint written with a different spec');
      log.info('resuming', {
        from: latest.prefix,
        epochsDone: resume.epoch,
        partialStep: resume.partial?.step ?? null,
      });
    } else {
      await initialiseWeights(model, { pretrained: spec.model.pretrained, seed: spec.seed, s3, log });
    }
    const plan = freezePlan(spec.freeze, model);
    log.info('training', { freeze: spec.freeze.mode, trainable: plan.trainable.length, epochs: spec.epochs });

    const outcome = await runTraining({
      jobId,
      attempt,
      spec,
      specDigest: specDigest(spec),
      classes: index.classes,
      model,
      optimizer,
      plan,
      batches: (split, epoch) =>
        batches({
          s3,
          index,
          split,
          imageSize: spec.imageSize,
          batchSize: spec.batchSize,
          augmentation: spec.augmentation,
          seed: spec.seed,
          epoch,
          pool,
        }),
      store,
      emit,
      print: deps.print,
      log,
      stopRequested: deps.stopRequested,
      resume,
      ...(deps.featureCache === undefined ? {} : { featureCache: deps.featureCache }),
    });
    if (outcome.status === 'stopped') {
      log.info('stopped on request after checkpointing');
      return TrainerExit.STOPPED;
    }
    await writeArtifacts({ jobId, spec, classes: index.classes, backend, model, outcome, store, emit });
    await emit({ type: 'finished', bestEpoch: outcome.best?.epoch ?? 0, bestValAcc: outcome.best?.valAcc ?? 0 });
    log.info('finished', { bestEpoch: outcome.best?.epoch ?? null, bestValAcc: outcome.best?.valAcc ?? null });
    return TrainerExit.SUCCESS;
  } finally {
    await pool.close();
    optimizer.dispose();
    model.dispose();
  }
}

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const level = levelFromEnv(env['GPULAB_LOG_LEVEL']);
  const log = level ? createLogger({ level, base: { component: 'trainer' } }) : silentLogger;
  let stop = false;
  const onTerm = () => {
    if (!stop) log.info('SIGTERM: finishing the current step, then checkpointing');
    stop = true;
  };
  process.on('SIGTERM', onTerm);
  // Local mode: a trainer whose scheduler died (re-parented) checkpoints and stops, so a restarted scheduler's
  // retry never races an orphan writing the same job's checkpoints.
  const parent = process.ppid;
  const orphanWatch =
    env['GPULAB_EXIT_WITH_PARENT'] === 'true'
      ? setInterval(() => {
          if (process.ppid === parent || stop) return;
          log.warn('parent process gone: checkpointing and stopping');
          stop = true;
        }, 1000).unref()
      : null;
  let emit: EventSink = noEvents;
  try {
    const { config, specJson } = parseConfig(env);
    const jobLog = log.child({ jobId: config.jobId, attempt: config.attempt });
    if (config.api)
      emit = httpEventSink({ apiUrl: config.api.url, token: config.api.token, jobId: config.jobId, log: jobLog });
    const spec = parseSpec(specJson);
    return await train(config, spec, {
      log: jobLog,
      stopRequested: () => stop,
      print: (line) => process.stdout.write(`${line}\n`),
      emit,
    });
  } catch (e) {
    const code = exitCodeFor(e);
    const message = (e as Error)?.message ?? String(e);
    log.error(message, { error: e, exitCode: code });
    await emit({
      type: 'failed',
      kind: code === TrainerExit.USER_ERROR ? 'user_error' : 'infrastructure_error',
      message: message.slice(0, 4000),
    });
    return code;
  } finally {
    process.off('SIGTERM', onTerm);
    if (orphanWatch) clearInterval(orphanWatch);
  }
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    () => process.exit(TrainerExit.INFRASTRUCTURE_ERROR),
  );
}
