import type { Writable } from 'node:stream';

/** The most log lines kept per container, as the kubelet's log rotation would (oldest dropped first). */
const MAX_LINES = 20_000;

interface Line {
  at: Date;
  text: string;
}

export interface LogQuery {
  tailLines?: number;
  limitBytes?: number;
  /** Only lines logged at or after this time (RFC 3339, second precision as the API takes it). */
  sinceTime?: Date;
  /** Prefix every line with its RFC 3339 (nanosecond-style) timestamp and a space. */
  timestamps?: boolean;
}

interface Follower {
  w: Writable;
  timestamps: boolean;
}

/**
 * A container's output as the kubelet keeps it: stdout and stderr interleaved, line by line with the time each
 * line was written, served by `pods/log` with `tailLines`, `limitBytes`, `sinceTime`, `timestamps` and `follow`
 * (followers get every later line and an end when the container exits).
 */
export class PodLog {
  private lines: Line[] = [];
  private partial = '';
  private ended = false;
  private readonly followers = new Set<Follower>();

  append(chunk: string): void {
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const text of parts) this.push(`${text}\n`);
  }

  private push(text: string): void {
    const line = { at: new Date(), text };
    this.lines.push(line);
    if (this.lines.length > MAX_LINES) this.lines.shift();
    for (const f of this.followers) f.w.write(render(line, f.timestamps));
  }

  end(): void {
    if (this.partial) this.push(this.partial);
    this.partial = '';
    this.ended = true;
    for (const f of this.followers) f.w.end();
    this.followers.clear();
  }

  get finished(): boolean {
    return this.ended;
  }

  text(q: LogQuery = {}): string {
    let lines = this.lines;
    if (q.sinceTime) lines = lines.filter((l) => l.at >= q.sinceTime!);
    if (q.tailLines !== undefined) lines = q.tailLines > 0 ? lines.slice(-q.tailLines) : [];
    let out = lines.map((l) => render(l, q.timestamps ?? false)).join('');
    if (q.limitBytes !== undefined) out = Buffer.from(out).subarray(0, q.limitBytes).toString('utf8');
    return out;
  }

  /** Streams what is logged from now on into `w`; ends it when the container exits or `w` closes. */
  follow(w: Writable, timestamps = false): void {
    if (this.ended) {
      w.end();
      return;
    }
    const f = { w, timestamps };
    this.followers.add(f);
    w.on('close', () => this.followers.delete(f));
  }
}

/** `2026-05-01T10:00:00.123000000Z text` — RFC 3339 with nanoseconds, as the kubelet writes them. */
function render(l: Line, timestamps: boolean): string {
  return timestamps ? `${l.at.toISOString().replace(/Z$/, '000000Z')} ${l.text}` : l.text;
}
