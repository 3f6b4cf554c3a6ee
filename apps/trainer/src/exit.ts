/**
 * How a failure maps to the trainer's exit code (the contract with the scheduler, see @gpulab/core TrainerExit):
 * USER_ERROR — the job cannot succeed as submitted: invalid spec, invalid dataset, unusable pretrained weights,
 *   a backend this image does not have, a diverging loss;
 * INFRASTRUCTURE_ERROR — everything else (storage, network, a malformed trainer environment, crashes): the
 *   scheduler retries from the last checkpoint.
 */
import { TrainerExit } from '@gpulab/core';
import { BackendUnavailableError } from './backends';
import { SpecError } from './config';
import { DatasetError } from './data';
import { WeightsError } from './model/weights';
import { DivergedError } from './train/loop';

const USER_ERRORS = [SpecError, DatasetError, WeightsError, BackendUnavailableError, DivergedError];

export function exitCodeFor(error: unknown): number {
  return USER_ERRORS.some((cls) => error instanceof cls) ? TrainerExit.USER_ERROR : TrainerExit.INFRASTRUCTURE_ERROR;
}
