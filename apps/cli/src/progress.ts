/**
 * A one-line progress display on stderr, redrawn in place (\r) at most every 100 ms; only when stderr is a terminal —
 * otherwise it prints nothing and callers print plain lines at the start and the end instead.
 */
import type { Stream } from './context';
import { bar, bytes, duration } from './format';

export class ProgressLine {
  private last = 0;
  private shown = false;
  private readonly started = Date.now();

  constructor(
    private readonly stream: Stream,
    private readonly enabled: boolean,
  ) {}

  /** Redraws `label [####....] pct% detail`. */
  update(label: string, done: number, total: number, detail = '', force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const f = total > 0 ? done / total : 1;
    const width = Math.max(40, (this.stream.columns || 100) - 1);
    const text = `${label} ${bar(f, 20)} ${(f * 100).toFixed(0).padStart(3)}% ${detail}`.slice(0, width);
    this.stream.write(`\r${text.padEnd(width)}`);
    this.shown = true;
  }

  /** Clears the line (and prints `final` on stderr if given). */
  finish(final?: string): void {
    if (this.enabled && this.shown)
      this.stream.write(`\r${' '.repeat(Math.max(40, (this.stream.columns || 100) - 1))}\r`);
    this.shown = false;
    if (final) this.stream.write(`${final}\n`);
  }

  /** "3.2 MB/s, 12s left" from bytes done of total since this display started. */
  rate(done: number, total: number): string {
    const secs = (Date.now() - this.started) / 1000;
    if (secs < 0.5 || done === 0) return '';
    const perSec = done / secs;
    return `${bytes(perSec)}/s, ${duration((total - done) / perSec)} left`;
  }
}
