import { randomBytes } from 'node:crypto';

/** A Redis key prefix of its own for each test, so tests never see each other's queues. */
export function testRedisPrefix(label = 't'): string {
  return `gpulab-test:${label}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

export const TEST_REDIS_URL = process.env.GPULAB_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
