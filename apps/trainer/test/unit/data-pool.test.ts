import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { createDecodePool, type DecodePool } from '../../src/data/decode-pool';
import { trainOp, valOp } from '../../src/data/geometry';
import { ImageDecodeError } from '../../src/data/image-kernel.cjs';
import { imageRng } from '../../src/data/prng';

const MAX = 40_000_000;
const aug = { randomResizedCrop: true, horizontalFlip: true, scale: [0.08, 1] as [number, number] };

async function images(): Promise<{ bytes: Buffer; width: number; height: number }[]> {
  const out = [];
  for (const [width, height] of [
    [64, 48],
    [30, 90],
    [28, 28],
    [120, 80],
  ] as const) {
    const px = Buffer.from(Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 13 + (i % 7) * 40) % 256));
    out.push({
      bytes: await sharp(px, { raw: { width, height, channels: 3 } })
        .png()
        .toBuffer(),
      width,
      height,
    });
  }
  return out;
}

describe('decode pool', () => {
  const pools: DecodePool[] = [];
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });

  it('starts worker threads under jest and produces the same bytes as the main thread', async () => {
    const workers = await createDecodePool({ workers: 2, maxPixels: MAX });
    const inline = await createDecodePool({ workers: 0, maxPixels: MAX });
    pools.push(workers, inline);
    expect(workers.mode).toBe('workers');
    expect(workers.threads).toBe(2);
    expect(inline.mode).toBe('inline');
    const imgs = await images();
    const ops = imgs.flatMap((img, i) => [
      { img, op: trainOp(img.width, img.height, 32, aug, imageRng(7, 1, i)) },
      { img, op: valOp(img.width, img.height, 24, i % 2 === 0) },
    ]);
    const a = await Promise.all(ops.map(({ img, op }) => workers.run(img.bytes, op)));
    const b = await Promise.all(ops.map(({ img, op }) => inline.run(img.bytes, op)));
    for (let i = 0; i < ops.length; i++) expect(Buffer.from(a[i]!).equals(Buffer.from(b[i]!))).toBe(true);
  });

  it('runKeep and apply on its decoded pixels give the bytes of run, on workers and inline', async () => {
    const workers = await createDecodePool({ workers: 2, maxPixels: MAX });
    const inline = await createDecodePool({ workers: 0, maxPixels: MAX });
    pools.push(workers, inline);
    const imgs = await images();
    for (const pool of [workers, inline])
      for (const [i, img] of imgs.entries()) {
        const first = trainOp(img.width, img.height, 32, aug, imageRng(7, 1, i));
        const kept = await pool.runKeep(img.bytes, first, i % 2 === 0 ? img.width * img.height : undefined);
        expect(Buffer.from(kept.out).equals(Buffer.from(await pool.run(img.bytes, first)))).toBe(true);
        const { image } = kept;
        expect([image.width, image.height, image.data.length]).toEqual([
          img.width,
          img.height,
          img.width * img.height * 3,
        ]);
        for (const op of [
          trainOp(img.width, img.height, 32, aug, imageRng(7, 2, i)),
          valOp(img.width, img.height, 24, true),
        ]) {
          const direct = await pool.run(img.bytes, op);
          expect(Buffer.from(await pool.apply(image, op)).equals(Buffer.from(direct))).toBe(true);
        }
      }
    await expect(workers.runKeep(Buffer.from('not an image'), valOp(8, 8, 8))).rejects.toBeInstanceOf(ImageDecodeError);
  });

  it('passes decode errors back with their code', async () => {
    const pool = await createDecodePool({ workers: 1, maxPixels: MAX });
    pools.push(pool);
    const err = await pool.run(Buffer.from('garbage'), valOp(10, 10, 8)).catch((e) => e);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect(err.code).toBe('UNDECODABLE');
  });

  it('falls back to the main thread when workers cannot start', async () => {
    const bad = join(tmpdir(), `gpulab-bad-worker-${process.pid}.cjs`);
    writeFileSync(bad, "throw new Error('cannot load');\n");
    const pool = await createDecodePool({ workers: 2, maxPixels: MAX, workerScript: bad });
    pools.push(pool);
    expect(pool.mode).toBe('inline');
    expect(pool.fallbackReason).toMatch(/decode workers could not start: .*cannot load/);
    const [img] = await images();
    expect(await pool.run(img!.bytes, valOp(img!.width, img!.height, 16))).toHaveLength(16 * 16 * 3);
  });

  it('keeps working when a worker dies: its tasks move to the others, then to the main thread', async () => {
    const pool = await createDecodePool({ workers: 2, maxPixels: MAX, perWorker: 1 });
    pools.push(pool);
    const imgs = await images();
    const slots = (pool as unknown as { slots: { worker: { terminate(): Promise<number> } }[] }).slots;
    const pending = imgs.map((img) => pool.run(img.bytes, valOp(img.width, img.height, 16)));
    await slots[0]!.worker.terminate();
    expect((await Promise.all(pending)).every((o) => o.length === 16 * 16 * 3)).toBe(true);
    expect(pool.threads).toBe(1);
    await slots[1]!.worker.terminate();
    const again = await pool.run(imgs[0]!.bytes, valOp(imgs[0]!.width, imgs[0]!.height, 16));
    expect(again).toHaveLength(16 * 16 * 3);
    expect(pool.threads).toBe(0);
  });

  it('rejects work after close', async () => {
    const pool = await createDecodePool({ workers: 1, maxPixels: MAX });
    await pool.close();
    const [img] = await images();
    await expect(pool.run(img!.bytes, valOp(img!.width, img!.height, 8))).rejects.toThrow(/closed/);
  });
});
