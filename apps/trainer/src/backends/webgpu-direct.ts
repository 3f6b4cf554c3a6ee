/**
 * A lean dispatch path for this repository's webgpu kernels (webgpu-kernels.ts), next to TF.js's
 * `runWebGPUProgram`, recording into the same command encoder and compute pass as TF.js's own kernels.
 *
 * Why: a training step is bound by the CPU work of recording its ~500 dispatches (measured on Dawn's null backend:
 * ~100 µs per dispatch through runWebGPUProgram, of which createBindGroup ~33 µs, packing and writing a fresh
 * uniform buffer ~20 µs, getBindGroupLayout ~6 µs, the shader key ~5 µs). Here, per dispatch:
 * - a program may write several outputs (TF.js's programs write one), so a fused kernel needs one dispatch where
 *   TF.js needs one per output (batch norm statistics, SGD's parameter and momentum buffer);
 * - the pipeline is found by the program's own key and has an explicit bind-group layout (made once);
 * - uniform buffers are immutable and shared by content (a layer's geometry is the same every step), so they are
 *   neither packed again nor written again.
 * Bind groups are still made per dispatch (~2 µs per binding on the null backend): caching them by buffers was tried
 * and found only ~3 % of them again, as TF.js's buffer pool hands its buffers out in a different order each step.
 * The WGSL a program gives is the user code of a TF.js program (it defines `main(index)` for a flat program, else
 * `main()`, and sees `localId`, `localIndex`, `globalId`, `workgroupId`, `numWorkgroups`, `getGlobalIndex()` and
 * `uniforms` as TF.js's preamble declares them), so the shaders' math is TF.js-program-identical.
 *
 * It uses fields of TF.js's WebGPUBackend that are not public API (checked on first use, with a clear error; the
 * unit test webgpu-kernels.test.ts runs it): device, tensorMap, commandEncoder, computePassEncoder,
 * commandQueueOwnedIds, dispatchCountInPass, ensureCommandEncoderReady, endComputePassEncoder, submitQueue,
 * uploadToGPU, makeTensorInfo; inside tf.time, also activeTimers, supportTimestampQuery, querySet and getQueryTime, to
 * time each dispatch as TF.js times its own (bench/trainer/kernel-profile.ts). Our dispatches do not go through
 * WebGPUBackend.recordAndSubmit (see directDispatchCount).
 */
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import { env, type TensorInfo } from '@tensorflow/tfjs-core';

export type UniformType = 'i32' | 'f32';

export interface DirectProgram {
  /** Identifies the WGSL below: programs with the same key must have the same code and binding names. */
  key: string;
  /** The storage buffers the shader reads, in the order of the inputs given to runDirect. */
  inputs: readonly string[];
  /** The storage buffers it writes (float32), in the order of runDirect's output shapes. */
  outputs: readonly string[];
  /** Scalar uniform fields, `uniforms.<name>` in the shader, in the order of runDirect's uniform values. */
  uniforms: readonly (readonly [string, UniformType])[];
  workgroupSize: readonly [number, number, number];
  /** Workgroups to dispatch (a flat program's x may exceed the device limit: it is folded as TF.js does). */
  workgroups: readonly [number, number, number];
  /** Whether `main` takes the flat global index (TF.js's flat dispatch layout). */
  flat: boolean;
  /** The user code (called once per pipeline). */
  code: () => string;
}

/** What this file uses of TF.js's WebGPUBackend (not public API). */
interface Internals {
  device: GPUDevice;
  queue: GPUQueue;
  tensorMap: { get(dataId: object): { resource?: unknown; dtype: string } | undefined };
  commandEncoder: GPUCommandEncoder | null;
  computePassEncoder: GPUComputePassEncoder | null;
  commandQueueOwnedIds: WeakSet<object>;
  dispatchCountInPass: number;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  uploadToGPU(dataId: object): void;
  makeTensorInfo(shape: number[], dtype: 'float32'): TensorInfo;
  /** Set inside tf.time / tf.profile: each program then runs in a pass of its own, timed (TF.js's recordAndSubmit). */
  activeTimers?: { name: string; query: Promise<number> }[] | null;
  supportTimestampQuery?: boolean;
  querySet?: GPUQuerySet | null;
  querySetCount?: number;
  getQueryTime?(): Promise<number>;
}

interface Pipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

interface State {
  b: Internals;
  pipelines: Map<string, Pipeline>;
  layouts: Map<string, { layout: GPUBindGroupLayout; pipelineLayout: GPUPipelineLayout }>;
  uniformBuffers: Map<string, GPUBuffer>;
  maxPerDimension: number;
}

/** Uniform buffers kept at most (cleared when exceeded; a ResNet18 step uses about a hundred). */
const MAX_UNIFORM_BUFFERS = 1024;

const states = new WeakMap<object, State>();
let dispatches = 0;

/** Dispatches recorded by runDirect so far in this process (WebGPUBackend.recordAndSubmit does not see them). */
export function directDispatchCount(): number {
  return dispatches;
}

const REQUIRED_METHODS = [
  'ensureCommandEncoderReady',
  'endComputePassEncoder',
  'submitQueue',
  'uploadToGPU',
  'makeTensorInfo',
] as const;

/** The names of the TF.js internals this file needs that `backend` lacks (empty when it can be used). */
export function missingInternals(backend: object): string[] {
  const b = backend as Record<string, unknown>;
  const missing: string[] = REQUIRED_METHODS.filter((m) => typeof b[m] !== 'function');
  if (!b['device']) missing.push('device');
  if (!b['queue']) missing.push('queue');
  if (!(b['tensorMap'] && typeof (b['tensorMap'] as { get?: unknown }).get === 'function')) missing.push('tensorMap');
  if (!(b['commandQueueOwnedIds'] instanceof WeakSet)) missing.push('commandQueueOwnedIds');
  if (typeof b['dispatchCountInPass'] !== 'number') missing.push('dispatchCountInPass');
  if (!('computePassEncoder' in b) && !('commandEncoder' in b)) missing.push('commandEncoder');
  return missing;
}

function state(backend: WebGPUBackend): State {
  let s = states.get(backend);
  if (s) return s;
  const missing = missingInternals(backend);
  if (missing.length > 0)
    throw new Error(
      `this TF.js webgpu backend lacks what the repository's webgpu kernels use (${missing.join(', ')}): ` +
        'run with the TF.js kernels (webgpu kernels off) or update webgpu-direct.ts',
    );
  const b = backend as unknown as Internals;
  s = {
    b,
    pipelines: new Map(),
    layouts: new Map(),
    uniformBuffers: new Map(),
    maxPerDimension: b.device.limits.maxComputeWorkgroupsPerDimension,
  };
  states.set(backend, s);
  return s;
}

/**
 * Tests only: dispatches as if the device allowed `max` workgroups per dimension (null: the device's limit), so that
 * the fold of large flat dispatches runs on small tensors.
 */
export function limitWorkgroupsForTest(backend: WebGPUBackend, max: number | null): void {
  const s = state(backend);
  s.maxPerDimension = max ?? s.b.device.limits.maxComputeWorkgroupsPerDimension;
}

function layoutFor(s: State, outputs: number, inputs: number, uniform: boolean) {
  const sig = `${outputs},${inputs},${uniform}`;
  let l = s.layouts.get(sig);
  if (l) return l;
  const entries: GPUBindGroupLayoutEntry[] = [];
  for (let i = 0; i < outputs + inputs; i++)
    entries.push({
      binding: i,
      visibility: GPUShaderStage.COMPUTE,
      buffer: { type: i < outputs ? 'storage' : 'read-only-storage' },
    });
  if (uniform)
    entries.push({ binding: outputs + inputs, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } });
  const layout = s.b.device.createBindGroupLayout({ entries });
  l = { layout, pipelineLayout: s.b.device.createPipelineLayout({ bindGroupLayouts: [layout] }) };
  s.layouts.set(sig, l);
  return l;
}

/** TF.js's fold of a flat dispatch whose x exceeds the per-dimension limit (backend_webgpu.ts reshapeDispatch). */
function foldDispatch(s: State, p: DirectProgram): [number, number, number] {
  const [x, y, z] = p.workgroups;
  const max = s.maxPerDimension;
  if (x <= max && y <= max && z <= max) return [x, y, z];
  if (!p.flat || y !== 1 || z !== 1) throw new Error(`dispatch ${p.workgroups} of ${p.key} exceeds the device limit`);
  const square = Math.ceil(Math.sqrt(x));
  if (square <= max) return [square, square, 1];
  const cube = Math.ceil(Math.cbrt(x));
  if (cube > max) throw new Error(`dispatch ${x} of ${p.key} exceeds the device limit`);
  return [cube, cube, cube];
}

/** The WGSL of `p`: TF.js's preamble (builtins, getGlobalIndex, bindings, uniforms), the user code, the entry. */
export function directShader(p: DirectProgram, folded: boolean): string {
  const [wx, wy, wz] = p.workgroupSize;
  const fields = p.uniforms.map(([n, t]) => `${n} : ${t},`).join(' ');
  const bindings = [
    ...p.outputs.map((n, i) => `@group(0) @binding(${i}) var<storage, read_write> ${n} : array<f32>;`),
    ...p.inputs.map((n, i) => `@group(0) @binding(${p.outputs.length + i}) var<storage, read> ${n} : array<f32>;`),
    ...(p.uniforms.length > 0
      ? [
          `struct Uniforms { ${fields} };`,
          `@group(0) @binding(${p.outputs.length + p.inputs.length}) var<uniform> uniforms : Uniforms;`,
        ]
      : []),
  ];
  return `
    var<private> localId : vec3<u32>;
    var<private> localIndex : u32;
    var<private> globalId : vec3<u32>;
    var<private> numWorkgroups : vec3<u32>;
    var<private> workgroupId : vec3<u32>;

    fn getGlobalIndex() -> i32 {
      ${
        folded
          ? `return i32((workgroupId.z * numWorkgroups.x * numWorkgroups.y + workgroupId.y * numWorkgroups.x +
               workgroupId.x) * ${wx * wy * wz}u + localIndex);`
          : 'return i32(globalId.x);'
      }
    }

    ${bindings.join('\n    ')}

    ${p.code()}

    @compute @workgroup_size(${wx}, ${wy}, ${wz})
    fn _start(@builtin(local_invocation_id) LocalId : vec3<u32>,
              @builtin(global_invocation_id) GlobalId : vec3<u32>,
              @builtin(local_invocation_index) LocalIndex : u32,
              @builtin(workgroup_id) WorkgroupId : vec3<u32>,
              @builtin(num_workgroups) NumWorkgroups : vec3<u32>) {
      localId = LocalId;
      localIndex = LocalIndex;
      globalId = GlobalId;
      numWorkgroups = NumWorkgroups;
      workgroupId = WorkgroupId;
      ${p.flat ? 'main(getGlobalIndex());' : 'main();'}
    }
  `;
}

function pipelineFor(s: State, p: DirectProgram, folded: boolean): Pipeline {
  const key = folded ? `${p.key}|folded` : p.key;
  let pl = s.pipelines.get(key);
  if (pl) return pl;
  const l = layoutFor(s, p.outputs.length, p.inputs.length, p.uniforms.length > 0);
  const module = s.b.device.createShaderModule({ code: directShader(p, folded), label: p.key });
  const pipeline = s.b.device.createComputePipeline({
    layout: l.pipelineLayout,
    compute: { module, entryPoint: '_start' },
    label: p.key,
  });
  pl = { pipeline, layout: l.layout };
  s.pipelines.set(key, pl);
  return pl;
}

function uniformBuffer(s: State, p: DirectProgram, values: readonly number[]): GPUBuffer {
  const n = p.uniforms.length;
  if (values.length !== n) throw new Error(`${p.key} takes ${n} uniforms, got ${values.length}`);
  const data = new ArrayBuffer(Math.ceil((4 * n) / 16) * 16);
  const ints = new Int32Array(data);
  const floats = new Float32Array(data);
  for (let i = 0; i < n; i++) {
    if (p.uniforms[i]![1] === 'i32') ints[i] = values[i]!;
    else floats[i] = values[i]!;
  }
  const key = ints.join(',');
  let buf = s.uniformBuffers.get(key);
  if (buf) return buf;
  if (s.uniformBuffers.size >= MAX_UNIFORM_BUFFERS) {
    // Dropped, not destroyed: a command buffer not yet submitted may still use one (Dawn keeps it alive).
    s.uniformBuffers.clear();
  }
  buf = s.b.device.createBuffer({
    size: data.byteLength,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    mappedAtCreation: true,
  });
  new Int32Array(buf.getMappedRange()).set(ints);
  buf.unmap();
  s.uniformBuffers.set(key, buf);
  return buf;
}

function gpuBuffer(s: State, t: TensorInfo): GPUBuffer {
  const data = s.b.tensorMap.get(t.dataId);
  const resource = data?.resource;
  if (!(resource instanceof GPUBuffer)) throw new Error('a webgpu kernel input is not in a GPU buffer');
  if (data!.dtype !== 'float32') throw new Error(`the repository's webgpu kernels take float32, got ${data!.dtype}`);
  return resource;
}

/**
 * Records one dispatch of `p` reading `inputs` (float32 tensors of this backend) and writing new float32 tensors of
 * `outputShapes`, which it returns (the caller owns them, as a kernel's outputs). `uniforms`: p.uniforms' values.
 */
export function runDirect(
  backend: WebGPUBackend,
  p: DirectProgram,
  inputs: readonly TensorInfo[],
  outputShapes: readonly (readonly number[])[],
  uniforms: readonly number[] = [],
): TensorInfo[] {
  const s = state(backend);
  const b = s.b;
  if (inputs.length !== p.inputs.length) throw new Error(`${p.key} takes ${p.inputs.length} inputs`);
  if (outputShapes.length !== p.outputs.length) throw new Error(`${p.key} writes ${p.outputs.length} outputs`);
  for (const t of inputs) b.uploadToGPU(t.dataId);
  const outputs = outputShapes.map((shape) => {
    const t = b.makeTensorInfo([...shape], 'float32');
    b.uploadToGPU(t.dataId);
    return t;
  });
  const workgroups = foldDispatch(s, p);
  const pl = pipelineFor(s, p, p.flat && (workgroups[1] !== 1 || workgroups[2] !== 1));
  const buffers = [...outputs, ...inputs].map((t) => gpuBuffer(s, t));
  if (p.uniforms.length > 0) buffers.push(uniformBuffer(s, p, uniforms));
  const group = b.device.createBindGroup({
    layout: pl.layout,
    entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  for (const t of inputs) b.commandQueueOwnedIds.add(t.dataId);
  for (const t of outputs) b.commandQueueOwnedIds.add(t.dataId);
  b.ensureCommandEncoderReady();
  const timed = b.activeTimers != null && b.supportTimestampQuery === true && typeof b.getQueryTime === 'function';
  if (timed) {
    // as TF.js times its own programs: a pass of its own with timestamps at both ends, read back by getQueryTime
    b.endComputePassEncoder();
    b.querySet ??= b.device.createQuerySet({ type: 'timestamp', count: b.querySetCount ?? 2 });
    b.computePassEncoder = b.commandEncoder!.beginComputePass({
      timestampWrites: { querySet: b.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 },
    });
  } else if (!b.computePassEncoder) b.computePassEncoder = b.commandEncoder!.beginComputePass({});
  const pass = b.computePassEncoder!;
  pass.setPipeline(pl.pipeline);
  pass.setBindGroup(0, group);
  pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
  dispatches++;
  b.dispatchCountInPass++;
  if (timed) {
    b.endComputePassEncoder();
    b.activeTimers!.push({ name: p.key, query: b.getQueryTime!() });
  } else if ((env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE') as number) <= b.dispatchCountInPass) {
    b.endComputePassEncoder();
    b.submitQueue();
  }
  return outputs;
}
