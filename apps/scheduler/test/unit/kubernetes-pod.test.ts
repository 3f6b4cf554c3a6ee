import { assertValidManifest, stopValidator } from '@gpulab/testing';
import type { V1Pod } from '@kubernetes/client-node';
import { stuckEnd, stuckReason, terminalEnd, vanishedEnd } from '../../src/launchers/kubernetes-exit';
import { attemptOf, attemptPod, attemptSecret, type PodTemplate } from '../../src/launchers/kubernetes-pod';
import type { LaunchRequest } from '../../src/launchers/launcher';

afterAll(() => stopValidator());

const template: PodTemplate = {
  namespace: 'gpulab',
  image: 'ghcr.io/gpulab/trainer-gpu:0.1.0',
  imagePullPolicy: 'IfNotPresent',
  command: null,
  flavorLabel: 'nvidia.com/gpu.product',
  flavorValues: { a100: 'NVIDIA-A100-SXM4-80GB' },
  gpuTaints: ['nvidia.com/gpu', 'gpulab.dev/dedicated'],
  s3SecretName: null,
  serviceAccountName: 'gpulab-trainer',
  terminationGraceSeconds: 60,
  deadlineMarginSeconds: 300,
  cpuPerGpu: 4,
  memoryGiBPerGpu: 24,
};
const jobId = '5f0c6a3e-8d2b-4f3e-9a51-0c1d2e3f4a5b';
const req: LaunchRequest = {
  jobId,
  attempt: 3,
  name: `gpulab-${jobId}-3`,
  flavor: 'a100',
  gpus: 2,
  userId: '0b7e1d52-1f7a-4c3b-8e0a-9d8c7b6a5f4e',
  maxRuntimeSeconds: 7200,
  env: {
    GPULAB_JOB_ID: jobId,
    GPULAB_ATTEMPT: '3',
    GPULAB_JOB_SPEC: '{"epochs":3}',
    GPULAB_JOB_TOKEN: 'gpj_secret',
    GPULAB_S3_ACCESS_KEY_ID: 'AKID',
    GPULAB_S3_SECRET_ACCESS_KEY: 'shh',
    GPULAB_S3_ENDPOINT: 'https://s3.example.org',
  },
};

describe('trainer pod manifest', () => {
  it('is a valid Pod (kubernetes-models) with GPUs, flavor selector, tolerations, deadline and no secret values', async () => {
    const pod = attemptPod(template, req);
    await assertValidManifest(pod);
    const spec = pod.spec!;
    expect(spec.nodeSelector).toEqual({ 'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB' });
    expect(spec.tolerations?.map((t) => t.key)).toEqual(['nvidia.com/gpu', 'gpulab.dev/dedicated']);
    expect(spec.activeDeadlineSeconds).toBe(7200 + 60 + 300);
    expect(spec.terminationGracePeriodSeconds).toBe(60);
    expect(spec.serviceAccountName).toBe('gpulab-trainer');
    expect(spec.automountServiceAccountToken).toBe(false);
    const c = spec.containers[0]!;
    expect(c.resources).toEqual({
      limits: { 'nvidia.com/gpu': '2', memory: '48Gi' },
      requests: { 'nvidia.com/gpu': '2', cpu: '8', memory: '48Gi' },
    });
    expect(c.command).toBeUndefined();
    expect(JSON.stringify(pod)).not.toMatch(/gpj_secret|shh|AKID/);
    const refs = (c.env ?? [])
      .filter((e) => e.valueFrom?.secretKeyRef)
      .map((e) => [e.name, e.valueFrom!.secretKeyRef!.name]);
    expect(refs).toEqual([
      ['GPULAB_JOB_TOKEN', req.name],
      ['GPULAB_S3_ACCESS_KEY_ID', req.name],
      ['GPULAB_S3_SECRET_ACCESS_KEY', req.name],
    ]);
    expect(attemptOf(pod)).toEqual({ jobId, attempt: 3 });
  });

  it('puts the token (and S3 keys without a shared Secret) into a valid per-attempt Secret', async () => {
    const own = attemptSecret(template, req);
    await assertValidManifest(own);
    expect(own.stringData).toEqual({
      GPULAB_JOB_TOKEN: 'gpj_secret',
      GPULAB_S3_ACCESS_KEY_ID: 'AKID',
      GPULAB_S3_SECRET_ACCESS_KEY: 'shh',
    });
    const shared = { ...template, s3SecretName: 's3-credentials' };
    expect(attemptSecret(shared, req).stringData).toEqual({ GPULAB_JOB_TOKEN: 'gpj_secret' });
    const env = attemptPod(shared, req).spec!.containers[0]!.env!;
    expect(env.find((e) => e.name === 'GPULAB_S3_SECRET_ACCESS_KEY')?.valueFrom?.secretKeyRef?.name).toBe(
      's3-credentials',
    );
  });

  it('uses the flavor name as the label value when unmapped, and the command override when set', async () => {
    const pod = attemptPod(
      { ...template, flavorLabel: 'gpulab.dev/flavor', command: ['node', 'main.js'] },
      {
        ...req,
        flavor: 't4',
        maxRuntimeSeconds: undefined,
      },
    );
    await assertValidManifest(pod);
    expect(pod.spec!.nodeSelector).toEqual({ 'gpulab.dev/flavor': 't4' });
    expect(pod.spec!.activeDeadlineSeconds).toBeUndefined();
    expect(pod.spec!.containers[0]!.command).toEqual(['node', 'main.js']);
  });

  it('a manifest with a broken field fails validation (the check can fail)', async () => {
    const pod = attemptPod(template, req) as unknown as {
      kind: string;
      spec: { containers: Array<Record<string, unknown>> };
    };
    pod.spec.containers[0]!.resources = { limits: { memory: 'a lot' } };
    await expect(assertValidManifest(pod)).rejects.toThrow(/memory/);
  });
});

function pod(status: V1Pod['status'], name = 'gpulab-x-1'): V1Pod {
  return {
    metadata: { name, labels: { 'gpulab.dev/job': 'x', 'gpulab.dev/attempt': '1' } },
    spec: { nodeName: 'gpu-7', containers: [{ name: 'trainer', image: 'img:1' }] },
    status,
  };
}
const terminated = (exitCode: number, reason = exitCode === 0 ? 'Completed' : 'Error') => ({
  containerStatuses: [
    {
      name: 'trainer',
      image: 'img:1',
      imageID: '',
      ready: false,
      restartCount: 0,
      state: { terminated: { exitCode, reason, finishedAt: new Date('2026-05-01T10:00:00Z') } },
    },
  ],
});

describe('pod end → trainer exit mapping', () => {
  it.each([
    ['exit 0', pod({ phase: 'Succeeded', ...terminated(0) }), 0, null],
    ['user error 10', pod({ phase: 'Failed', ...terminated(10) }), 10, null],
    ['infrastructure 11', pod({ phase: 'Failed', ...terminated(11) }), 11, null],
    ['stopped 12', pod({ phase: 'Failed', ...terminated(12) }), 12, null],
    ['OOMKilled', pod({ phase: 'Failed', ...terminated(137, 'OOMKilled') }), 10, 'OOMKilled'],
    [
      'Evicted',
      pod({ phase: 'Failed', reason: 'Evicted', message: 'low memory', ...terminated(137) }),
      null,
      'Evicted',
    ],
    [
      'DeadlineExceeded',
      pod({ phase: 'Failed', reason: 'DeadlineExceeded', ...terminated(143) }),
      null,
      'DeadlineExceeded',
    ],
  ])('%s', (_label, p, code, signal) => {
    const end = terminalEnd(p);
    expect([end.code, end.signal]).toEqual([code, signal]);
  });

  it('a pod deleted while running is a lost node; one deleted after its exit keeps the exit code', () => {
    const lost = vanishedEnd(pod({ phase: 'Running' }));
    expect(lost).toMatchObject({ code: null, signal: 'NodeLost' });
    expect(lost.why).toMatch(/node gpu-7 lost or drained/);
    expect(vanishedEnd(pod({ phase: 'Running', ...terminated(12) }))).toMatchObject({ code: 12, signal: null });
  });

  it('image pull failures are user-visible failures; a missing Secret is infrastructure', () => {
    const waiting = (reason: string, message: string) =>
      pod({
        phase: 'Pending',
        containerStatuses: [
          {
            name: 'trainer',
            image: 'img:1',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: { waiting: { reason, message } },
          },
        ],
      });
    const img = waiting('ImagePullBackOff', 'Back-off pulling image "img:1"');
    const end = stuckEnd(img, stuckReason(img)!, 300_000);
    expect(end).toMatchObject({ code: 10, signal: 'ImagePullBackOff' });
    expect(end.why).toBe(
      'the trainer image "img:1" could not be pulled for 300 s (ImagePullBackOff: Back-off pulling image "img:1")',
    );
    const sec = waiting('CreateContainerConfigError', 'secret "s3" not found');
    expect(stuckEnd(sec, stuckReason(sec)!, 1000)).toMatchObject({ code: 11, signal: 'CreateContainerConfigError' });
    expect(stuckReason(waiting('ContainerCreating', ''))).toBeNull();
  });
});
