import { parseSafetensors, SafetensorsError, serializeSafetensors, toFloat32 } from '../../src/model/safetensors';

function handmade(header: object, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

describe('safetensors', () => {
  it('round-trips F32 and I64 tensors with metadata, header padded to 8 bytes', () => {
    const a = Float32Array.of(1.5, -2, 3.25, 0, 1e-30, 7);
    const bytes = serializeSafetensors(
      [
        { name: 'a.weight', dtype: 'F32', shape: [2, 3], data: a },
        { name: 'bn.num_batches_tracked', dtype: 'I64', shape: [], data: BigInt64Array.of(42n) },
      ],
      { format: 'pt' },
    );
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLen % 8).toBe(0);
    const file = parseSafetensors(bytes);
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(file.tensors.get('a.weight')!.shape).toEqual([2, 3]);
    expect(toFloat32(file.tensors.get('a.weight')!)).toEqual(a);
    const counter = file.tensors.get('bn.num_batches_tracked')!;
    expect(counter.dtype).toBe('I64');
    expect(counter.shape).toEqual([]);
    expect(toFloat32(counter)).toEqual(Float32Array.of(42));
  });

  it('reads F16, BF16 and F64', () => {
    // F16: 1.0 = 0x3C00, -2.0 = 0xC000, 0.5 = 0x3800, smallest subnormal 0x0001 = 2^-24
    const f16 = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3800, 0x0001]).buffer);
    // BF16: upper halves of float32 1.0 (0x3F80) and -3.0 (0xC040)
    const bf16 = new Uint8Array(new Uint16Array([0x3f80, 0xc040]).buffer);
    const f64 = new Uint8Array(Float64Array.of(0.1, -1e10).buffer);
    const data = new Uint8Array(f16.length + bf16.length + f64.length);
    data.set(f16, 0);
    data.set(bf16, 8);
    data.set(f64, 12);
    const file = parseSafetensors(
      handmade(
        {
          h: { dtype: 'F16', shape: [4], data_offsets: [0, 8] },
          b: { dtype: 'BF16', shape: [2], data_offsets: [8, 12] },
          d: { dtype: 'F64', shape: [2], data_offsets: [12, 28] },
        },
        data,
      ),
    );
    expect([...toFloat32(file.tensors.get('h')!)]).toEqual([1, -2, 0.5, 2 ** -24]);
    expect([...toFloat32(file.tensors.get('b')!)]).toEqual([1, -3]);
    expect([...toFloat32(file.tensors.get('d')!)]).toEqual([Math.fround(0.1), -1e10]);
  });

  it('rejects malformed files with SafetensorsError', () => {
    expect(() => parseSafetensors(new Uint8Array(4))).toThrow(SafetensorsError);
    expect(() =>
      parseSafetensors(handmade({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(4))),
    ).toThrow(/out of bounds/);
    expect(() =>
      parseSafetensors(handmade({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8))),
    ).toThrow(/needs 12 bytes/);
    expect(() =>
      parseSafetensors(handmade({ x: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1))),
    ).toThrow(/unsupported dtype/);
    const bad = handmade({}, new Uint8Array(0));
    bad[8] = 0x7b; // still "{" …
    bad[9] = 0x21; // … but then "!"
    expect(() => parseSafetensors(bad)).toThrow(/not JSON/);
    expect(() => serializeSafetensors([{ name: 'x', dtype: 'F32', shape: [2], data: Float32Array.of(1) }])).toThrow(
      /does not match/,
    );
  });
});
