import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dirStore, getJson, putJson } from '../../src/io/object-store';

describe('dirStore', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'gpulab-store-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('puts and gets bytes and JSON under nested keys; missing keys are null', async () => {
    const store = dirStore(dir);
    await store.put('a/b/c.bin', Uint8Array.of(1, 2, 3));
    expect([...(await store.get('a/b/c.bin'))!]).toEqual([1, 2, 3]);
    expect(await putJson(store, 'x.json', { k: [1, 'v'] })).toBe(JSON.stringify({ k: [1, 'v'] }).length);
    expect(await getJson(store, 'x.json')).toEqual({ k: [1, 'v'] });
    expect(await store.get('nope')).toBeNull();
    expect(await getJson(store, 'nope.json')).toBeNull();
  });

  it('refuses keys that escape the directory', async () => {
    const store = dirStore(path.join(dir, 'inner'));
    await expect(store.put('../outside', 'x')).rejects.toThrow(/escapes/);
    await expect(store.get('../../etc/passwd')).rejects.toThrow(/escapes/);
  });
});
