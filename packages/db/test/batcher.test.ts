import { Batcher } from '../src/batcher';

const tick = () => new Promise((r) => setImmediate(r));

describe('Batcher', () => {
  it('sends items that arrive together in one call, and each caller gets its own result', async () => {
    const calls: number[][] = [];
    const b = new Batcher(
      async (items: number[]) => {
        calls.push(items);
        return items.map((i) => i * 10);
      },
      { maxBatch: 100, maxInFlight: 2 },
    );
    expect(await Promise.all([1, 2, 3].map((i) => b.run(i)))).toEqual([10, 20, 30]);
    expect(calls).toEqual([[1, 2, 3]]);
  });

  it('keeps at most maxInFlight calls running; what waits goes together in the next one', async () => {
    const release: (() => void)[] = [];
    const calls: number[][] = [];
    let running = 0;
    let most = 0;
    const b = new Batcher(
      async (items: number[]) => {
        calls.push(items);
        most = Math.max(most, ++running);
        await new Promise<void>((r) => release.push(r));
        running--;
        return items;
      },
      { maxBatch: 2, maxInFlight: 1 },
    );
    const first = b.run(1);
    await tick();
    const rest = [2, 3, 4].map((i) => b.run(i));
    await tick();
    expect(calls).toEqual([[1]]);
    release.shift()!();
    await first;
    await tick();
    expect(calls).toEqual([[1], [2, 3]]);
    release.shift()!();
    await tick();
    await tick();
    release.shift()!();
    expect(await Promise.all(rest)).toEqual([2, 3, 4]);
    expect(calls).toEqual([[1], [2, 3], [4]]);
    expect(most).toBe(1);
  });

  it('when a shared call fails, tries each item alone so only the bad one fails', async () => {
    const b = new Batcher(
      async (items: number[]) => {
        if (items.includes(13)) throw new Error('unlucky');
        return items;
      },
      { maxBatch: 10, maxInFlight: 1 },
    );
    const settled = await Promise.allSettled([1, 13, 2].map((i) => b.run(i)));
    expect(settled).toEqual([
      { status: 'fulfilled', value: 1 },
      { status: 'rejected', reason: new Error('unlucky') },
      { status: 'fulfilled', value: 2 },
    ]);
  });
});
