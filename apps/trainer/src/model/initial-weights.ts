/**
 * The weights a fresh run starts from: the job's pretrained safetensors file (torchvision names; a fc that does not
 * match the dataset's classes is replaced by a freshly initialised head seeded by the job's seed), or torchvision's
 * default random initialisation seeded by the job's seed.
 */
import { getObjectBytes, isNotFound, parseS3Uri } from '@gpulab/storage';
import type { S3 } from '../io/object-store';
import type { Logger } from '../log';
import { randomStateDict } from './init';
import type { ResNet18 } from './resnet18';
import { SafetensorsError } from './safetensors';
import { loadSafetensors, loadStateDict, WeightsError } from './weights';

export async function initialiseWeights(
  model: ResNet18,
  opts: { pretrained: string | null; seed: number; s3: S3; log: Logger },
): Promise<void> {
  if (opts.pretrained === null) {
    loadStateDict(model, randomStateDict(model.numClasses, opts.seed));
    opts.log.info('weights initialised randomly', { seed: opts.seed });
    return;
  }
  const { bucket, key } = parseS3Uri(opts.pretrained);
  let bytes: Uint8Array;
  try {
    bytes = await getObjectBytes(opts.s3, bucket, key);
  } catch (e) {
    if (isNotFound(e)) throw new WeightsError(`pretrained weights ${opts.pretrained} do not exist`);
    throw e;
  }
  try {
    const report = loadSafetensors(model, bytes, { resetMismatchedHead: { seed: opts.seed } });
    opts.log.info('pretrained weights loaded', {
      uri: opts.pretrained,
      headReset: report.headReset,
      unexpected: report.unexpected.length,
    });
  } catch (e) {
    if (e instanceof SafetensorsError) throw new WeightsError(`pretrained weights ${opts.pretrained}: ${e.message}`);
    throw e;
  }
}
