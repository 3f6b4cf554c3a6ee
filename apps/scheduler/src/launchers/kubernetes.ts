import type { Logger } from '@gpulab/logger';
import { ApiException, CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { type CapacitySettings, clusterCapacity } from './kubernetes-capacity';
import {
  isRunning,
  isTerminal,
  type PodEnd,
  pendingReason,
  stuckEnd,
  stuckReason,
  terminalEnd,
  toDate,
  trainerStatus,
  vanishedEnd,
} from './kubernetes-exit';
import { PodLogFollower } from './kubernetes-logs';
import {
  attemptOf,
  attemptPod,
  attemptSecret,
  POD_SELECTOR,
  type PodTemplate,
  TRAINER_CONTAINER,
} from './kubernetes-pod';
import { type PodEventType, PodWatcher } from './kubernetes-watch';
import type { ExitInfo, ExitListener, Launcher, LaunchRequest, OutputChunk } from './launcher';

export interface KubernetesLauncherOptions {
  kubeConfig: KubeConfig;
  template: PodTemplate;
  capacity: Omit<CapacitySettings, 'flavorLabel' | 'flavorValues' | 'gpuTaints'>;
  log: Logger;
  clock: () => Date;
  /** A container that cannot pull its image (or find its Secret) this long ends the attempt. */
  stuckTimeoutMs: number;
  /** launch() waits this long for the pod to run; a pod still unscheduled then is deleted and the launch fails. */
  startTimeoutMs: number;
  /** Finished pods are deleted this long after the scheduler recorded their end (until then they are its record). */
  finishedPodTtlMs: number;
  /** capacity() answers from a node listing at most this old. */
  capacityCacheMs: number;
  watch: { minBackoffMs: number; maxBackoffMs: number; timeoutSeconds: number };
  /** A pod log stream that ends while the pod runs is reopened after this long. */
  logRetryMs?: number;
}

const TAIL_LINES = 40;

function isStatus(e: unknown, code: number): boolean {
  return e instanceof ApiException && e.code === code;
}

/**
 * Runs each attempt as a pod (`gpulab-<jobId>-<attempt>`) in one namespace. A list-then-watch of the gpulab pods
 * (kubernetes-watch.ts) keeps a cache of them; pod phases and container states are turned into trainer exits
 * (kubernetes-exit.ts) and reported once per pod, with the log tail, before the pod and its Secret are deleted.
 * Creating a pod that exists (409 AlreadyExists) adopts it: an attempt is never started twice. The pods outlive the
 * scheduler: a new scheduler lists them, adopts the live ones and reports the ones that ended while it was away.
 */
export class KubernetesLauncher implements Launcher {
  readonly kind = 'kubernetes' as const;
  readonly core: CoreV1Api;
  readonly watcher: PodWatcher;
  private readonly pods = new Map<string, V1Pod>();
  private readonly reported = new Set<string>();
  private readonly stopping = new Set<string>();
  private readonly stuckSince = new Map<string, number>();
  private readonly listeners: ExitListener[] = [];
  private readonly outputListeners: Array<(o: OutputChunk) => void> = [];
  private readonly follower: PodLogFollower;
  private readonly waiters = new Set<() => void>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private sweep: NodeJS.Timeout | null = null;
  private starting: Promise<void> | null = null;
  private capacityCache: { at: number; value: Record<string, number> } | null = null;
  private closed = false;

  constructor(private readonly opts: KubernetesLauncherOptions) {
    this.core = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.watcher = new PodWatcher(
      opts.kubeConfig,
      this.core,
      { namespace: opts.template.namespace, labelSelector: POD_SELECTOR, log: opts.log, ...opts.watch },
      { onSync: (pods) => this.onSync(pods), onEvent: (type, pod) => this.onEvent(type, pod) },
    );
    this.follower = new PodLogFollower(
      opts.kubeConfig,
      opts.template.namespace,
      opts.log,
      (name, text) => this.output(name, text),
      (name) => {
        const p = this.pods.get(name);
        return !!p && !isTerminal(p) && !this.reported.has(name);
      },
      opts.logRetryMs ?? 1000,
    );
  }

  private get ns(): string {
    return this.opts.template.namespace;
  }

  /** Lists and starts watching on first use (after the scheduler has subscribed to exits). */
  private ensureStarted(): Promise<void> {
    if (!this.starting) {
      this.starting = this.watcher.start().then(() => {
        const every = Math.max(50, Math.min(5000, Math.floor(this.opts.stuckTimeoutMs / 4)));
        this.sweep = setInterval(() => {
          for (const p of this.pods.values()) this.evaluate(p, false);
        }, every);
        this.sweep.unref();
      });
      this.starting.catch(() => {
        this.starting = null;
      });
    }
    return this.starting;
  }

  async capacity(): Promise<Record<string, number>> {
    const now = Date.now();
    if (this.capacityCache && now - this.capacityCache.at < this.opts.capacityCacheMs) return this.capacityCache.value;
    const t = this.opts.template;
    const value = await clusterCapacity(this.core, {
      ...this.opts.capacity,
      flavorLabel: t.flavorLabel,
      flavorValues: t.flavorValues,
      gpuTaints: t.gpuTaints,
    });
    this.capacityCache = { at: now, value };
    return value;
  }

  /**
   * Creates the attempt's Secret, then its pod. An existing pod is adopted, never duplicated: found in the cache,
   * or behind a 409 AlreadyExists on the Secret (a pod is only ever created after its Secret), or on the pod
   * itself. `adopted` is reported only when the pod runs with a token of its own: a pod that existed without its
   * Secret cannot have started, and starts with the token written now.
   */
  async launch(req: LaunchRequest): Promise<{ startedAt: Date; adopted: boolean }> {
    await this.ensureStarted();
    const cached = this.pods.get(req.name);
    let adopted = !!cached && !cached.metadata?.deletionTimestamp;
    if (!adopted && !(await this.createSecret(req))) {
      adopted = (await this.readPod(req.name)) !== null;
      if (!adopted) await this.replaceSecret(req);
    }
    if (!adopted) {
      try {
        await this.core.createNamespacedPod({ namespace: this.ns, body: attemptPod(this.opts.template, req) });
        this.opts.log.info({ jobId: req.jobId, attempt: req.attempt, pod: req.name }, 'trainer pod created');
      } catch (e) {
        if (!isStatus(e, 409)) {
          await this.deleteSecret(req.name);
          throw e;
        }
        this.opts.log.warn({ pod: req.name }, 'trainer pod already exists without its Secret; adopting it');
      }
    } else this.opts.log.info({ jobId: req.jobId, attempt: req.attempt, pod: req.name }, 'adopted existing pod');
    const pod = await this.waitForStart(req.name);
    const observed = this.opts.clock();
    const ranSince = toDate(trainerStatus(pod)?.state?.running?.startedAt ?? pod.status?.startTime);
    return { startedAt: adopted && ranSince && ranSince < observed ? ranSince : observed, adopted };
  }

  get template(): Readonly<PodTemplate> {
    return this.opts.template;
  }

  private async readPod(name: string): Promise<V1Pod | null> {
    try {
      return await this.core.readNamespacedPod({ name, namespace: this.ns });
    } catch (e) {
      if (isStatus(e, 404)) return null;
      throw e;
    }
  }

  /** Waits until the pod runs or ends; a pod not even bound to a node by the start timeout is removed. */
  private async waitForStart(name: string): Promise<V1Pod> {
    const started = await this.until(() => {
      const p = this.pods.get(name);
      return p && (isRunning(p) || isTerminal(p) || this.reported.has(name)) ? p : undefined;
    }, this.opts.startTimeoutMs);
    if (started) return started;
    const pod = await this.readPod(name);
    if (!pod) throw new Error(`pod ${name} disappeared before it started`);
    if (pod.spec?.nodeName) return pod; // bound: its GPU is ours; the image may still be pulling
    const why = pendingReason(pod);
    this.reported.add(name);
    await this.deletePod(name, 0);
    await this.deleteSecret(name);
    throw new Error(`pod ${name} was not scheduled within ${Math.round(this.opts.startTimeoutMs / 1000)} s (${why})`);
  }

  async stop(name: string, graceMs: number): Promise<void> {
    const pod = this.pods.get(name);
    if (!pod || this.stopping.has(name) || this.reported.has(name) || isTerminal(pod)) return;
    this.stopping.add(name);
    this.opts.log.info({ pod: name, graceMs }, 'stopping trainer pod (SIGTERM, then SIGKILL after the grace period)');
    await this.deletePod(name, Math.max(1, Math.ceil(graceMs / 1000)));
  }

  async running(): Promise<string[]> {
    await this.ensureStarted();
    return [...this.pods.keys()];
  }

  onExit(listener: ExitListener): void {
    this.listeners.push(listener);
  }

  /** The trainer's output, followed from each pod's log while it runs. */
  onOutput(listener: (o: OutputChunk) => void): void {
    this.outputListeners.push(listener);
  }

  private output(name: string, text: string): void {
    const p = this.pods.get(name);
    const a = p ? attemptOf(p) : null;
    if (a) for (const l of this.outputListeners) l({ jobId: a.jobId, attempt: a.attempt, text });
  }

  /** Stops watching; the pods keep running (a restarted scheduler adopts them). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweep) clearInterval(this.sweep);
    for (const t of this.timers) clearTimeout(t);
    for (const w of [...this.waiters]) w();
    this.follower.close();
    await this.watcher.stop();
  }

  private onSync(pods: V1Pod[]): void {
    const seen = new Set(pods.map((p) => p.metadata?.name ?? ''));
    for (const [name, old] of [...this.pods]) {
      if (seen.has(name)) continue;
      this.pods.delete(name);
      this.gone(old, true);
    }
    for (const p of pods) if (p.metadata?.name) this.pods.set(p.metadata.name, p);
    for (const p of pods) this.evaluate(p, true);
    this.notify();
  }

  private onEvent(type: PodEventType, pod: V1Pod): void {
    const name = pod.metadata?.name;
    if (!name) return;
    if (type === 'DELETED') {
      this.pods.delete(name);
      this.gone(pod, false);
    } else {
      this.pods.set(name, pod);
      this.evaluate(pod, false);
    }
    this.notify();
  }

  /** Reports a pod that ended, or that has been stuck before starting for longer than the timeout. */
  private evaluate(pod: V1Pod, late: boolean): void {
    const name = pod.metadata?.name;
    if (!name || !attemptOf(pod) || this.reported.has(name) || this.closed) return;
    if (isTerminal(pod)) {
      this.report(pod, terminalEnd(pod), { late, how: 'ended' });
      return;
    }
    if (isRunning(pod) && this.outputListeners.length) this.follower.follow(name, late);
    if (pod.metadata?.deletionTimestamp) return; // being stopped: its final status or DELETED follows
    const stuck = stuckReason(pod);
    if (!stuck) {
      this.stuckSince.delete(name);
      return;
    }
    const since = this.stuckSince.get(name) ?? Date.now();
    this.stuckSince.set(name, since);
    const waited = Date.now() - since;
    if (waited >= this.opts.stuckTimeoutMs) this.report(pod, stuckEnd(pod, stuck, waited), { late, how: 'stuck' });
  }

  /** A pod left the API: its end was reported already (our cleanup), or it vanished while live (node lost). */
  private gone(pod: V1Pod, late: boolean): void {
    const name = pod.metadata?.name ?? '';
    this.stuckSince.delete(name);
    this.stopping.delete(name);
    if (this.reported.delete(name)) return;
    this.report(pod, vanishedEnd(pod), { late, how: 'gone' });
  }

  /**
   * Reports a pod's end once: `ended` (a terminal phase: its log is drained onto the output first and the pod is
   * deleted after the TTL), `stuck` (deleted at once), `gone` (it left the API; only its Secret remains).
   */
  private report(pod: V1Pod, end: PodEnd, o: { late: boolean; how: 'ended' | 'stuck' | 'gone' }): void {
    const name = pod.metadata!.name!;
    const attempt = attemptOf(pod);
    if (!attempt || this.closed) return;
    this.reported.add(name);
    this.stuckSince.delete(name);
    const observed = this.opts.clock();
    const endedAt = o.late && end.finishedAt && end.finishedAt < observed ? end.finishedAt : observed;
    const followLog = o.how === 'ended' && this.outputListeners.length > 0;
    if (followLog) this.follower.follow(name, o.late); // a pod that ended before we saw it run: its whole log
    void (async () => {
      // the last lines reach the log bus before the exit is recorded (and the log archived)
      await this.follower.drained(name, followLog ? 3000 : 0);
      const tail = o.how === 'gone' ? '' : await this.tail(name);
      const lines = tail.split('\n').filter((l) => l.trim());
      if (end.why) lines.push(`error: ${end.why}`);
      const info: ExitInfo = {
        name,
        jobId: attempt.jobId,
        attempt: attempt.attempt,
        code: end.code,
        signal: end.signal,
        endedAt,
        tail: lines.slice(-TAIL_LINES).join('\n'),
      };
      this.opts.log.info(
        { jobId: info.jobId, attempt: info.attempt, code: info.code, signal: info.signal, why: end.why },
        'trainer pod ended',
      );
      // a pod that is gone leaves only its Secret: removed before the end is passed on, so that a scheduler that
      // dies in between leaves nothing (its successor finds no pod and records the attempt as lost)
      if (o.how === 'gone') await this.deleteSecret(name);
      // the pod is the record of the end until the scheduler has recorded it: a scheduler that dies before that
      // finds the pod when it restarts and is told again (deleting it on a timer alone lost such ends: the next
      // scheduler found no pod and retried a finished attempt)
      await Promise.all(this.listeners.map((l) => l(info)));
      if (o.how === 'gone') this.reported.delete(name);
      else this.later(o.how === 'stuck' ? 0 : this.opts.finishedPodTtlMs, () => this.cleanup(name));
    })().catch((e: unknown) => this.opts.log.error({ err: e, pod: name }, 'reporting a pod end failed'));
  }

  private async tail(name: string): Promise<string> {
    try {
      return await this.core.readNamespacedPodLog({
        name,
        namespace: this.ns,
        container: TRAINER_CONTAINER,
        tailLines: TAIL_LINES,
      });
    } catch {
      return '';
    }
  }

  /**
   * Removes an ended attempt's Secret, then its pod: the pod goes last because it is the record a restarted
   * scheduler finds (lists), reports late and cleans up again — a scheduler that died between the two deletes
   * leaves a pod without a Secret, never a Secret nobody will look for (the scheduler may not list Secrets).
   */
  private async cleanup(name: string): Promise<void> {
    await this.deleteSecret(name);
    await this.deletePod(name, 0);
  }

  /**
   * An attempt recorded as lost has no pod; its Secret may remain if the scheduler died between creating the Secret
   * and the pod. Removed here (idempotent), unless a pod of that name is known after all.
   */
  async discard(name: string): Promise<void> {
    if (this.pods.has(name)) return;
    await this.deleteSecret(name);
  }

  /** Creates the attempt's Secret; false when one exists already (409). */
  private async createSecret(req: LaunchRequest): Promise<boolean> {
    try {
      await this.core.createNamespacedSecret({ namespace: this.ns, body: attemptSecret(this.opts.template, req) });
      return true;
    } catch (e) {
      if (isStatus(e, 409)) return false;
      throw e;
    }
  }

  private async replaceSecret(req: LaunchRequest): Promise<void> {
    const body = attemptSecret(this.opts.template, req);
    await this.core.replaceNamespacedSecret({ name: req.name, namespace: this.ns, body });
  }

  private async deletePod(name: string, graceSeconds: number): Promise<void> {
    try {
      await this.core.deleteNamespacedPod({ name, namespace: this.ns, gracePeriodSeconds: graceSeconds });
    } catch (e) {
      if (!isStatus(e, 404)) this.opts.log.warn({ err: e, pod: name }, 'deleting a pod failed');
    }
  }

  private async deleteSecret(name: string): Promise<void> {
    try {
      await this.core.deleteNamespacedSecret({ name, namespace: this.ns });
    } catch (e) {
      if (!isStatus(e, 404)) this.opts.log.warn({ err: e, secret: name }, 'deleting a secret failed');
    }
  }

  private later(ms: number, fn: () => Promise<void>): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      void fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  private until<T>(check: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
    return new Promise((resolve) => {
      const done = (v: T | undefined) => {
        clearTimeout(timer);
        this.waiters.delete(fire);
        resolve(v);
      };
      const fire = () => {
        if (this.closed) return done(undefined);
        const v = check();
        if (v !== undefined) done(v);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      this.waiters.add(fire);
      fire();
    });
  }
}
