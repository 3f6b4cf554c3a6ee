import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import type { Logger } from '@gpulab/logger';
import type { ExitInfo, ExitListener, Launcher, LaunchRequest, OutputChunk } from './launcher';

interface Proc {
  req: LaunchRequest;
  child: ChildProcess;
  log: WriteStream;
  tail: string[];
  killTimer?: NodeJS.Timeout;
}

const TAIL_LINES = 40;

/**
 * Runs each attempt as a child process of the scheduler (the trainer's main.ts). Capacity is a fixed number of GPU
 * slots for one flavor. Output goes to `<logDir>/<jobId>/attempt-<n>.log`, and its tail is kept for the job's
 * status message. The trainer exits by itself if the scheduler dies (it watches its parent).
 */
export class LocalLauncher implements Launcher {
  readonly kind = 'local' as const;
  private readonly procs = new Map<string, Proc>();
  private readonly listeners: ExitListener[] = [];
  private readonly outputListeners: Array<(o: OutputChunk) => void> = [];

  constructor(
    private readonly opts: {
      slots: number;
      flavor: string;
      command: string[];
      cwd: string;
      logDir: string;
      baseEnv: Record<string, string | undefined>;
      log: Logger;
      clock: () => Date;
    },
  ) {}

  async capacity(): Promise<Record<string, number>> {
    return { [this.opts.flavor]: this.opts.slots };
  }

  async launch(req: LaunchRequest): Promise<{ startedAt: Date; adopted: boolean }> {
    if (this.procs.has(req.name)) return { startedAt: this.opts.clock(), adopted: true };
    const [cmd, ...args] = this.opts.command;
    if (!cmd) throw new Error('GPULAB_TRAINER_COMMAND is empty');
    const dir = path.join(this.opts.logDir, req.jobId);
    mkdirSync(dir, { recursive: true });
    const log = createWriteStream(path.join(dir, `attempt-${req.attempt}.log`), { flags: 'a' });
    const child = spawn(cmd, args, {
      cwd: this.opts.cwd,
      env: { ...this.opts.baseEnv, ...req.env, GPULAB_EXIT_WITH_PARENT: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc: Proc = { req, child, log, tail: [] };
    this.procs.set(req.name, proc);
    const onData = (chunk: Buffer) => {
      log.write(chunk);
      const text = chunk.toString('utf8');
      for (const l of this.outputListeners) l({ jobId: req.jobId, attempt: req.attempt, text });
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        proc.tail.push(line);
        if (proc.tail.length > TAIL_LINES) proc.tail.shift();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (e) => {
        this.procs.delete(req.name);
        log.end();
        reject(e);
      });
    });
    child.once('exit', (code, signal) => {
      if (proc.killTimer) clearTimeout(proc.killTimer);
      this.procs.delete(req.name);
      log.end();
      const info: ExitInfo = {
        name: req.name,
        jobId: req.jobId,
        attempt: req.attempt,
        code,
        signal,
        endedAt: this.opts.clock(),
        tail: proc.tail.join('\n'),
      };
      this.opts.log.info({ jobId: req.jobId, attempt: req.attempt, code, signal }, 'trainer process exited');
      for (const l of this.listeners) l(info);
    });
    this.opts.log.info({ jobId: req.jobId, attempt: req.attempt, pid: child.pid }, 'trainer process started');
    return { startedAt: this.opts.clock(), adopted: false };
  }

  async stop(name: string, graceMs: number): Promise<void> {
    const p = this.procs.get(name);
    if (!p || p.killTimer) return;
    p.child.kill('SIGTERM');
    p.killTimer = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
    p.killTimer.unref();
  }

  async running(): Promise<string[]> {
    return [...this.procs.keys()];
  }

  onExit(listener: ExitListener): void {
    this.listeners.push(listener);
  }

  onOutput(listener: (o: OutputChunk) => void): void {
    this.outputListeners.push(listener);
  }

  async close(): Promise<void> {
    for (const p of this.procs.values()) p.child.kill('SIGTERM');
  }
}
