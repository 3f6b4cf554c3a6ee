import type { AdmissionPolicy } from '@gpulab/core';

/** The admission policy tests run with: one-week fair-share half-life, up to 8 running GPUs per user. */
export const TEST_POLICY: AdmissionPolicy = Object.freeze({
  halfLifeSeconds: 7 * 24 * 3600,
  defaultMaxRunningGpusPerUser: 8,
});
