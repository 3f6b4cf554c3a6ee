import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { ContainerConfigError, type EnvFrom, type EnvVar, resolveContainerEnv } from './container-env';
import type { KubeObject } from './objects';
import { PodLog } from './pod-log';
import { chooseNode, isTerminal } from './pod-scheduler';
import { ResourceStore, type StoreEvent } from './store';

export interface KubeletOptions {
  /** Working directory of container processes without `workingDir`. */
  cwd?: string;
  /** Environment every container process starts with (PATH, HOME…), under the pod's own env. */
  baseEnv?: Record<string, string | undefined>;
  /** Each image's entrypoint, for containers without `command` (the image's ENTRYPOINT + CMD). */
  images?: Record<string, string[]>;
  /** Images whose pull fails: the container waits in ErrImagePull / ImagePullBackOff until the pod is deleted. */
  badImages?: string[];
  /** Time between ErrImagePull and ImagePullBackOff flips. */
  pullBackOffMs?: number;
  /** Time a bound pod spends in ContainerCreating before its image is pulled. */
  startDelayMs?: number;
}

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: EnvVar[];
  envFrom?: EnvFrom[];
}

interface Run {
  ns: string;
  name: string;
  uid: string;
  container: Container;
  child: ChildProcess | null;
  log: PodLog;
  timers: Set<NodeJS.Timeout>;
  terminating: boolean;
  /** The pod is gone from the API (force deletion, node lost): its process is killed and nothing is reported. */
  gone: boolean;
  startedAt?: string;
  podReason?: { reason: string; message: string };
  containerReason?: string;
}

const PODS = ResourceStore.type('pods');
const NODES = ResourceStore.type('nodes');
const EVENTS = ResourceStore.type('events');
const SIGNALS: Record<string, number> = { SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGHUP: 1 };

/**
 * A simulated scheduler + kubelet behind the test API server. It binds pending pods to nodes (nodeSelector, taints,
 * allocatable `nvidia.com/gpu`), "pulls" the image (or fails to, for `badImages`), resolves env from Secrets, runs
 * the first container's command as a local child process, and writes the pod status a real kubelet writes:
 * Pending (ContainerCreating / ErrImagePull / ImagePullBackOff / CreateContainerConfigError) → Running →
 * Succeeded | Failed with containerStatuses (exitCode, reason Completed | Error | OOMKilled), plus events. Graceful
 * deletion sends SIGTERM and SIGKILL after the grace period; activeDeadlineSeconds fails the pod with
 * DeadlineExceeded; deleting a node kills and deletes its pods (node lost). Containers are never restarted
 * (restartPolicy Never semantics), and only the first container of a pod runs.
 */
export class SimulatedKubelet {
  private readonly runs = new Map<string, Run>();
  private readonly unsubscribe: () => void;
  private closed = false;
  private ipSeq = 2;

  constructor(
    private readonly store: ResourceStore,
    private readonly opts: KubeletOptions = {},
  ) {
    // handled after the write that caused it has reached every watcher, so event order stays resourceVersion order
    this.unsubscribe = store.subscribe((e) => setImmediate(() => this.onEvent(e)));
  }

  logs(ns: string, name: string): PodLog | undefined {
    return this.runs.get(`${ns}/${name}`)?.log;
  }

  /** Evicts a running pod as the kubelet does under node pressure: killed, phase Failed, reason Evicted. */
  evict(ns: string, name: string, message = 'The node was low on resource: memory.'): void {
    const run = this.mustRun(ns, name);
    run.podReason = { reason: 'Evicted', message };
    this.event(run, 'Warning', 'Evicted', message);
    this.kill(run, 'SIGKILL');
  }

  /** Kills the container as the kernel's OOM killer would: exit 137, reason OOMKilled. */
  oomKill(ns: string, name: string): void {
    const run = this.mustRun(ns, name);
    run.containerReason = 'OOMKilled';
    this.kill(run, 'SIGKILL');
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    for (const run of this.runs.values()) {
      run.gone = true;
      this.stopTimers(run);
      this.kill(run, 'SIGKILL');
    }
    this.runs.clear();
  }

  private mustRun(ns: string, name: string): Run {
    const run = this.runs.get(`${ns}/${name}`);
    if (!run?.child) throw new Error(`pod ${ns}/${name} has no running container`);
    return run;
  }

  private onEvent(e: StoreEvent): void {
    if (this.closed) return;
    const o = e.object;
    if (e.resource.plural === 'nodes') {
      if (e.type === 'DELETED') this.nodeLost(o.metadata.name);
      this.schedulePending();
    } else if (e.resource.plural === 'pods') {
      const run = this.runs.get(`${o.metadata.namespace}/${o.metadata.name}`);
      if (run && run.uid !== o.metadata.uid) return;
      if (e.type === 'DELETED') {
        if (run) this.forget(run);
        this.schedulePending();
      } else if (o.metadata.deletionTimestamp) {
        if (run && !run.terminating) this.terminate(run, o);
        else if (!run) this.store.remove(PODS, o.metadata.namespace, o.metadata.name);
      } else if (e.type === 'ADDED') {
        if ((o.spec as { nodeName?: string }).nodeName) this.admit(o);
        else this.schedulePending();
      }
    }
  }

  /** The scheduler: binds every unbound pod that fits; the others get PodScheduled=False with the reason. */
  private schedulePending(): void {
    const pods = this.store.list(PODS);
    const nodes = this.store.list(NODES);
    for (const pod of pods) {
      if ((pod.spec as { nodeName?: string }).nodeName || pod.metadata.deletionTimestamp || isTerminal(pod)) continue;
      const fit = chooseNode(pod, nodes, pods);
      if (fit.node !== null) {
        const bound = this.store.mutate(PODS, pod.metadata.namespace, pod.metadata.name, (p) => {
          (p.spec as { nodeName?: string }).nodeName = fit.node;
          setCondition(p, 'PodScheduled', 'True', this.store.now());
        });
        if (!bound) continue;
        (pod.spec as { nodeName?: string }).nodeName = fit.node;
        this.eventFor(
          pod,
          'Normal',
          'Scheduled',
          `Successfully assigned ${pod.metadata.namespace}/${pod.metadata.name} to ${fit.node}`,
          'default-scheduler',
        );
        this.admit(bound);
      } else {
        const cond = conditionOf(pod, 'PodScheduled');
        if (cond?.message === fit.message) continue;
        this.store.mutate(PODS, pod.metadata.namespace, pod.metadata.name, (p) =>
          setCondition(p, 'PodScheduled', 'False', this.store.now(), 'Unschedulable', fit.message),
        );
        this.eventFor(pod, 'Warning', 'FailedScheduling', fit.message, 'default-scheduler');
      }
    }
  }

  /** The kubelet takes a pod bound to its node: ContainerCreating, then the image pull. */
  private admit(pod: KubeObject): void {
    const container = (pod.spec as { containers: Container[] }).containers[0]!;
    const run: Run = {
      ns: pod.metadata.namespace ?? 'default',
      name: pod.metadata.name,
      uid: pod.metadata.uid!,
      container,
      child: null,
      log: new PodLog(),
      timers: new Set(),
      terminating: false,
      gone: false,
    };
    this.runs.set(`${run.ns}/${run.name}`, run);
    const hostIP = `10.1.0.${this.ipSeq % 250}`;
    const podIP = `10.244.0.${this.ipSeq++ % 250}`;
    this.update(run, (s) => {
      s.phase = 'Pending';
      s.hostIP = hostIP;
      s.podIP = podIP;
      s.startTime = this.store.now();
      s.containerStatuses = [containerStatus(container, { waiting: { reason: 'ContainerCreating' } })];
    });
    this.after(run, this.opts.startDelayMs ?? 20, () => this.pull(run, 0));
  }

  private pull(run: Run, tries: number): void {
    const image = run.container.image;
    if (!(this.opts.badImages ?? []).includes(image)) {
      this.event(run, 'Normal', 'Pulled', `Container image "${image}" already present on machine`);
      this.createContainer(run);
      return;
    }
    const backOff = tries % 2 === 1;
    const reason = backOff ? 'ImagePullBackOff' : 'ErrImagePull';
    const message = backOff
      ? `Back-off pulling image "${image}"`
      : `rpc error: code = NotFound desc = failed to pull and unpack image "${image}": not found`;
    this.update(run, (s) => {
      s.containerStatuses = [containerStatus(run.container, { waiting: { reason, message } })];
    });
    this.event(
      run,
      backOff ? 'Normal' : 'Warning',
      backOff ? 'BackOff' : 'Failed',
      backOff ? message : `Failed to pull image "${image}": ${message}`,
    );
    this.after(run, this.opts.pullBackOffMs ?? 300, () => this.pull(run, tries + 1));
  }

  private createContainer(run: Run): void {
    const pod = this.store.get(PODS, run.ns, run.name);
    if (!pod || run.terminating) return;
    let env: Record<string, string>;
    try {
      env = resolveContainerEnv(this.store, pod, run.container);
    } catch (e) {
      if (!(e instanceof ContainerConfigError)) throw e;
      const message = e.message;
      this.update(run, (s) => {
        s.containerStatuses = [
          containerStatus(run.container, { waiting: { reason: 'CreateContainerConfigError', message } }),
        ];
      });
      this.event(run, 'Warning', 'Failed', `Error: ${message}`);
      this.after(run, 250, () => this.createContainer(run));
      return;
    }
    const argv = [
      ...(run.container.command ?? this.opts.images?.[run.container.image] ?? []),
      ...(run.container.args ?? []),
    ];
    const [cmd, ...args] = argv;
    if (!cmd) {
      this.finish(run, 128, 'StartError', `no command specified for image "${run.container.image}"`);
      return;
    }
    const child = spawn(cmd, args, {
      cwd: run.container.workingDir ?? this.opts.cwd ?? process.cwd(),
      env: { ...this.opts.baseEnv, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    run.child = child;
    child.stdout?.on('data', (c: Buffer) => run.log.append(c.toString('utf8')));
    child.stderr?.on('data', (c: Buffer) => run.log.append(c.toString('utf8')));
    child.once('error', (e) => {
      if (!run.startedAt) this.finish(run, 128, 'StartError', e.message);
    });
    child.once('spawn', () => {
      run.startedAt = this.store.now();
      this.update(run, (s, p) => {
        s.phase = 'Running';
        s.containerStatuses = [
          { ...containerStatus(run.container, { running: { startedAt: run.startedAt } }), ready: true, started: true },
        ];
        setCondition(p, 'Ready', 'True', this.store.now());
        setCondition(p, 'ContainersReady', 'True', this.store.now());
      });
      this.event(run, 'Normal', 'Started', `Started container ${run.container.name}`);
      const deadline = (pod.spec as { activeDeadlineSeconds?: number }).activeDeadlineSeconds;
      if (deadline) {
        this.after(run, deadline * 1000, () => {
          run.podReason = {
            reason: 'DeadlineExceeded',
            message: 'Pod was active on the node longer than the specified deadline',
          };
          this.event(run, 'Normal', 'DeadlineExceeded', run.podReason.message);
          this.terminate(run, pod);
        });
      }
    });
    child.once('close', (code, signal) => {
      if (run.gone) return;
      const exitCode = code ?? 128 + (SIGNALS[signal ?? ''] ?? 9);
      this.finish(run, exitCode, run.containerReason ?? (exitCode === 0 ? 'Completed' : 'Error'));
    });
  }

  /** The container ended: terminated state, terminal phase, then removal if the pod was being deleted. */
  private finish(run: Run, exitCode: number, reason: string, message?: string): void {
    this.stopTimers(run);
    run.log.end();
    const finishedAt = this.store.now();
    const pod = this.update(run, (s, p) => {
      s.phase = exitCode === 0 && !run.podReason ? 'Succeeded' : 'Failed';
      if (run.podReason) Object.assign(s, run.podReason);
      s.containerStatuses = [
        containerStatus(run.container, {
          terminated: {
            exitCode,
            reason,
            ...(message ? { message } : {}),
            startedAt: run.startedAt ?? finishedAt,
            finishedAt,
            containerID: `containerd://${randomBytes(8).toString('hex')}`,
          },
        }),
      ];
      setCondition(p, 'Ready', 'False', finishedAt, 'PodCompleted');
      setCondition(p, 'ContainersReady', 'False', finishedAt, 'PodCompleted');
    });
    if (pod?.metadata.deletionTimestamp) this.store.remove(PODS, run.ns, run.name);
    this.schedulePending();
  }

  /** Graceful stop: SIGTERM, SIGKILL after the grace period; a pod with no process yet goes at once. */
  private terminate(run: Run, pod: KubeObject): void {
    run.terminating = true;
    const grace =
      pod.metadata.deletionGracePeriodSeconds ??
      (pod.spec as { terminationGracePeriodSeconds?: number }).terminationGracePeriodSeconds ??
      30;
    if (!run.child || run.child.exitCode !== null) {
      this.stopTimers(run);
      run.log.end();
      if (run.podReason) this.finish(run, 137, 'Error');
      else this.store.remove(PODS, run.ns, run.name);
      return;
    }
    this.event(run, 'Normal', 'Killing', `Stopping container ${run.container.name}`);
    this.kill(run, 'SIGTERM');
    this.after(run, grace * 1000, () => this.kill(run, 'SIGKILL'));
  }

  /** Node lost: its pods' processes die with it and the pod garbage collector deletes the pods. */
  private nodeLost(node: string): void {
    for (const pod of this.store.list(PODS)) {
      if ((pod.spec as { nodeName?: string }).nodeName !== node) continue;
      const run = this.runs.get(`${pod.metadata.namespace}/${pod.metadata.name}`);
      if (run) this.forget(run);
      this.store.remove(PODS, pod.metadata.namespace, pod.metadata.name);
    }
  }

  private forget(run: Run): void {
    run.gone = true;
    this.stopTimers(run);
    this.kill(run, 'SIGKILL');
    run.log.end();
    this.runs.delete(`${run.ns}/${run.name}`);
  }

  private kill(run: Run, signal: NodeJS.Signals): void {
    if (run.child && run.child.exitCode === null && run.child.signalCode === null) run.child.kill(signal);
  }

  private after(run: Run, ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      run.timers.delete(t);
      if (!run.gone && !this.closed) fn();
    }, ms);
    run.timers.add(t);
  }

  private stopTimers(run: Run): void {
    for (const t of run.timers) clearTimeout(t);
    run.timers.clear();
  }

  private update(run: Run, fn: (status: Record<string, unknown>, pod: KubeObject) => void): KubeObject | undefined {
    if (run.gone) return undefined;
    return this.store.mutate(PODS, run.ns, run.name, (p) => {
      if (p.metadata.uid !== run.uid) return;
      p.status ??= {};
      fn(p.status as Record<string, unknown>, p);
    });
  }

  private event(run: Run, type: string, reason: string, message: string): void {
    const pod = this.store.get(PODS, run.ns, run.name);
    if (pod) this.eventFor(pod, type, reason, message, 'kubelet');
  }

  private eventFor(pod: KubeObject, type: string, reason: string, message: string, component: string): void {
    const now = this.store.now();
    this.store.create(EVENTS, {
      metadata: { name: `${pod.metadata.name}.${randomBytes(8).toString('hex')}`, namespace: pod.metadata.namespace },
      involvedObject: {
        kind: 'Pod',
        apiVersion: 'v1',
        name: pod.metadata.name,
        namespace: pod.metadata.namespace,
        uid: pod.metadata.uid,
      },
      type,
      reason,
      message,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component, ...(component === 'kubelet' ? { host: (pod.spec as { nodeName?: string }).nodeName } : {}) },
    });
  }
}

function containerStatus(c: Container, state: Record<string, unknown>): Record<string, unknown> {
  return { name: c.name, image: c.image, imageID: '', ready: false, started: false, restartCount: 0, state };
}

function conditionOf(pod: KubeObject, type: string) {
  const conds = (pod.status as { conditions?: Array<{ type: string; message?: string }> } | undefined)?.conditions;
  return conds?.find((c) => c.type === type);
}

function setCondition(pod: KubeObject, type: string, status: string, now: string, reason?: string, message?: string) {
  pod.status ??= {};
  const s = pod.status as { conditions?: Array<Record<string, unknown>> };
  s.conditions ??= [];
  const conds = s.conditions;
  const next = {
    type,
    status,
    lastProbeTime: null,
    lastTransitionTime: now,
    ...(reason ? { reason } : {}),
    ...(message ? { message } : {}),
  };
  const i = conds.findIndex((c) => c.type === type);
  if (i >= 0) conds[i] = next;
  else conds.push(next);
}
