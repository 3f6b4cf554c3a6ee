import { TrainerExit } from '@gpulab/core';
import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { TRAINER_CONTAINER } from './kubernetes-pod';

/**
 * How a pod's end maps onto the trainer exit contract that finish.ts applies (@gpulab/core `outcomeOfExit`):
 *
 * | what Kubernetes says                                 | code | signal            | so the job…                    |
 * | ---------------------------------------------------- | ---- | ----------------- | ------------------------------ |
 * | container terminated with exit code n (0/10/11/12…) | n    | null              | as the trainer meant it        |
 * | container OOMKilled                                  | 10   | OOMKilled         | fails: the same spec OOMs again |
 * | image cannot be pulled (ErrImagePull, ImagePullBackOff, InvalidImageName) for the timeout | 10 | ImagePullBackOff | fails at once, uncharged |
 * | a Secret it needs is missing (CreateContainerConfigError) for the timeout | 11 | CreateContainerConfigError | retries |
 * | pod Evicted (node pressure, preemption)              | null | Evicted           | retries from its checkpoint    |
 * | pod deleted before the container ended (node lost, drained, deleted by hand) | null | NodeLost | retries |
 * | activeDeadlineSeconds passed (scheduler was not there to stop it) | null | DeadlineExceeded | retries; the next attempt is stopped by the max-runtime guard |
 *
 * Infrastructure outcomes (signal set, or code 11) are retried and charged only up to the attempt's last
 * checkpoint; user errors (code 10) fail at once and are not charged. `why` is a sentence for the job's status
 * message; the launcher appends it to the log tail as an `error: …` line, which finish.ts picks up.
 */
export interface PodEnd {
  code: number | null;
  signal: string | null;
  why: string | null;
  finishedAt: Date | null;
}

/** Container waiting reasons that mean the container will not start by itself. */
const IMAGE_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);
const CONFIG_REASONS = new Set(['CreateContainerConfigError', 'CreateContainerError']);

export function trainerStatus(pod: V1Pod): V1ContainerStatus | undefined {
  const all = pod.status?.containerStatuses ?? [];
  return all.find((c) => c.name === TRAINER_CONTAINER) ?? all[0];
}

export function isTerminal(pod: V1Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}

export function isRunning(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && !!trainerStatus(pod)?.state?.running;
}

/** Watch events carry RFC 3339 strings; deserialized API responses carry Dates. */
export function toDate(v: unknown): Date | null {
  if (v instanceof Date) return v;
  if (typeof v === 'string' && v) {
    const d = new Date(v);
    return Number.isNaN(d.getTime()) ? null : d;
  }
  return null;
}

/** The end of a pod that reached Succeeded or Failed. */
export function terminalEnd(pod: V1Pod): PodEnd {
  const terminated = trainerStatus(pod)?.state?.terminated;
  const finishedAt = toDate(terminated?.finishedAt);
  const reason = pod.status?.reason;
  const message = pod.status?.message;
  if (reason === 'Evicted')
    return { code: null, signal: 'Evicted', why: `the pod was evicted: ${message ?? 'node pressure'}`, finishedAt };
  if (reason === 'DeadlineExceeded')
    return {
      code: null,
      signal: 'DeadlineExceeded',
      why: 'the pod ran past its active deadline (max runtime plus grace) and was stopped by Kubernetes',
      finishedAt,
    };
  if (terminated?.reason === 'OOMKilled')
    return {
      code: TrainerExit.USER_ERROR,
      signal: 'OOMKilled',
      why: 'the trainer ran out of memory (OOMKilled); a smaller batchSize or imageSize needs less',
      finishedAt,
    };
  if (terminated && typeof terminated.exitCode === 'number')
    return { code: terminated.exitCode, signal: null, why: null, finishedAt };
  return {
    code: null,
    signal: reason ?? 'PodFailed',
    why: `the pod ${pod.status?.phase === 'Succeeded' ? 'succeeded' : 'failed'} without a container exit status${message ? `: ${message}` : ''}`,
    finishedAt,
  };
}

/** The end of a pod that disappeared from the API (node lost, deleted) without a terminal phase. */
export function vanishedEnd(lastSeen: V1Pod): PodEnd {
  const terminated = trainerStatus(lastSeen)?.state?.terminated;
  if (terminated || isTerminal(lastSeen)) return terminalEnd(lastSeen);
  const node = lastSeen.spec?.nodeName;
  return {
    code: null,
    signal: 'NodeLost',
    why: `pod ${lastSeen.metadata?.name} was deleted before its trainer exited${node ? ` (node ${node} lost or drained)` : ''}`,
    finishedAt: null,
  };
}

/** A container stuck before starting, and why; null when it is starting or running normally. */
export function stuckReason(pod: V1Pod): { reason: string; message: string } | null {
  const waiting = trainerStatus(pod)?.state?.waiting;
  if (!waiting?.reason) return null;
  if (IMAGE_REASONS.has(waiting.reason) || CONFIG_REASONS.has(waiting.reason))
    return { reason: waiting.reason, message: waiting.message ?? '' };
  return null;
}

/** The end reported for a pod stuck past the timeout (the launcher deletes it). */
export function stuckEnd(pod: V1Pod, stuck: { reason: string; message: string }, waitedMs: number): PodEnd {
  const image = pod.spec?.containers?.[0]?.image ?? '?';
  const secs = Math.round(waitedMs / 1000);
  if (IMAGE_REASONS.has(stuck.reason))
    return {
      code: TrainerExit.USER_ERROR,
      signal: 'ImagePullBackOff',
      why: `the trainer image "${image}" could not be pulled for ${secs} s (${stuck.reason}${stuck.message ? `: ${stuck.message}` : ''})`,
      finishedAt: null,
    };
  return {
    code: TrainerExit.INFRASTRUCTURE_ERROR,
    signal: stuck.reason,
    why: `the trainer container could not be created for ${secs} s (${stuck.reason}${stuck.message ? `: ${stuck.message}` : ''})`,
    finishedAt: null,
  };
}

/** Why a pod is not running yet, for a launch that gives up waiting. */
export function pendingReason(pod: V1Pod): string {
  const sched = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (sched) return `${sched.reason ?? 'Unschedulable'}: ${sched.message ?? ''}`.trim();
  const waiting = trainerStatus(pod)?.state?.waiting;
  if (waiting?.reason) return `${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`;
  return pod.status?.phase ?? 'Pending';
}
