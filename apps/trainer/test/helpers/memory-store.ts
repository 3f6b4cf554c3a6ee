import type { ObjectStore } from '../../src/io/object-store';

/** An in-memory ObjectStore that records the order of writes. */
export class MemoryStore implements ObjectStore {
  readonly location = 'memory://';
  readonly objects = new Map<string, Uint8Array>();
  readonly writes: string[] = [];

  async put(key: string, body: Uint8Array | string): Promise<void> {
    this.objects.set(key, typeof body === 'string' ? new TextEncoder().encode(body) : new Uint8Array(body));
    this.writes.push(key);
  }

  async get(key: string): Promise<Uint8Array | null> {
    return this.objects.get(key) ?? null;
  }

  json<T>(key: string): T {
    const bytes = this.objects.get(key);
    if (!bytes) throw new Error(`no object ${key}`);
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  }
}
