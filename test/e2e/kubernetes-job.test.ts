/**
 * The end-to-end job with the `kubernetes` driver: the scheduler launches a pod through the real Kubernetes client
 * against the test API server, whose simulated kubelet runs the real trainer as the pod's process. The job runs to
 * SUCCEEDED with checkpoints, the model and an exact ledger; the pod's log reaches the API; the pod is cleaned up.
 */
import path from 'node:path';
import { listObjects, uploadImageFolder } from '@gpulab/storage';
import { REPO_ROOT } from '@gpulab/testing';
import { type Stack, startStack } from './harness';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ slots: 1, launcher: 'kubernetes' });
  await uploadImageFolder(
    stack.s3.client,
    stack.s3.bucket,
    'datasets/fashion-mini',
    path.join(REPO_ROOT, 'examples', 'datasets', 'fashion-mini'),
  );
});
afterAll(async () => stack?.close());

type JobBody = {
  id: string;
  status: string;
  statusMessage: string | null;
  metrics: Array<{ epoch: number }>;
  transitions: Array<{ to: string }>;
  attempts: Array<{ launcher: string; handle: string }>;
  cost: { gpuSeconds: number; amountMicros: number; ledger: Array<{ gpuSeconds: number; amountMicros: number }> };
};

it('runs the real trainer as a pod to SUCCEEDED, charging exactly the ledger', async () => {
  const s = await stack.addStudent('pod@uni.edu', 3600);
  const submit = await stack.api<JobBody>(s.token, 'POST', '/v1/jobs', {
    name: 'fashion-mini on kubernetes',
    dataset: { uri: `s3://${stack.s3.bucket}/datasets/fashion-mini` },
    imageSize: 32,
    epochs: 2,
    batchSize: 16,
    freeze: { mode: 'full' },
    optimizer: { type: 'sgd', lr: 0.01 },
    backend: 'wasm',
    resources: { maxHours: 0.25 },
  });
  expect(submit.status).toBe(201);
  const job = (await stack.waitForStatus(
    s.token,
    submit.body.id,
    ['SUCCEEDED', 'FAILED', 'CANCELLED'],
    200_000,
  )) as unknown as JobBody;
  expect(job.statusMessage).toBe('training finished');
  expect(job.status).toBe('SUCCEEDED');
  expect(job.transitions.map((t) => t.to)).toEqual(['QUEUED', 'ADMITTED', 'LAUNCHING', 'RUNNING', 'SUCCEEDED']);
  expect(job.attempts).toEqual([expect.objectContaining({ launcher: 'kubernetes', handle: `gpulab-${job.id}-1` })]);
  expect(job.metrics.map((m) => m.epoch)).toEqual([1, 2]);

  const keys = (await listObjects(stack.s3.client, stack.s3.bucket, `jobs/${job.id}/`)).map((o) => o.key);
  expect(keys).toContain(`jobs/${job.id}/checkpoints/latest.json`);
  expect(keys).toContain(`jobs/${job.id}/model/weights.safetensors`);

  const seconds = job.cost.ledger.reduce((a, r) => a + r.gpuSeconds, 0);
  expect(seconds).toBe(job.cost.gpuSeconds);
  expect(seconds).toBeGreaterThan(0);
  const m = await stack.db.membership.findUniqueOrThrow({ where: { id: s.membershipId } });
  expect(m).toMatchObject({ heldSeconds: 0, usedSeconds: seconds });

  const logs = await fetch(`${stack.apiUrl}/v1/jobs/${job.id}/logs`, {
    headers: { authorization: `Bearer ${s.token}` },
  });
  expect(await logs.text()).toMatch(/Epoch 2\/2 \| Train Loss/);
}, 300_000);
