/**
 * Chooses and initialises the TF.js backend for a job (spec.backend) and returns the name that actually runs.
 *
 * - tensorflow: `@tensorflow/tfjs-node-gpu`, else `@tensorflow/tfjs-node` (libtensorflow; CUDA with -gpu).
 * - webgpu: `@tensorflow/tfjs-backend-webgpu` on Node through Dawn's `webgpu` npm package.
 * - wasm: XNNPACK in WebAssembly, plus this repository's convolution-gradient kernels (wasm-kernels.ts); on CPU nodes
 *   with the native addon built, convolutions and train-mode batch norm run natively on OpenBLAS (native-kernels.ts).
 * - cpu: plain JavaScript (slow; a reference).
 * - auto: tensorflow when one of its packages can be imported, else wasm.
 * Optional backends are imported dynamically, so a trainer image without them still runs on wasm/cpu.
 */
import type { Backend } from '@gpulab/core';
import * as tf from '@tensorflow/tfjs-core';
import { registerTrainingGradients } from './gradients';
import { loadNativeKernels, type NativeMode } from './native-kernels';
import { registerWasmTrainingKernels } from './wasm-kernels';
import { registerWebgpuTrainingKernels } from './webgpu-kernels';

export type { NativeMode } from './native-kernels';
export { nativeKernelsActive } from './wasm-kernels';

/** The requested backend cannot run in this image: a user error (the spec asks for something unavailable). */
export class BackendUnavailableError extends Error {
  override readonly name = 'BackendUnavailableError';
}

/** `import()` with a specifier TypeScript does not resolve (optional packages). Null when not installed. */
async function tryImport(specifier: string): Promise<Record<string, unknown> | null> {
  return importOptional(() => import(specifier));
}

/**
 * An optional package's dynamic import, null when it is not installed. Given as a literal `import('…')` thunk where a
 * bundler must see the name (the GPU bundle includes the webgpu backend with the same TF.js core).
 */
async function importOptional(load: () => Promise<unknown>): Promise<Record<string, unknown> | null> {
  try {
    return (await load()) as Record<string, unknown>;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return null;
    throw e;
  }
}

async function activate(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok || tf.getBackend() !== name) throw new BackendUnavailableError(`backend ${name} failed to initialise`);
  await tf.ready();
}

async function initTensorflow(): Promise<string | null> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    if (await tryImport(pkg)) {
      if (!tf.findBackend('tensorflow'))
        throw new BackendUnavailableError(
          `${pkg} loaded but registered no 'tensorflow' backend (tfjs-core version mismatch?)`,
        );
      await activate('tensorflow');
      return 'tensorflow';
    }
  }
  return null;
}

/**
 * The emscripten runtime of tfjs-backend-wasm installs process-wide `uncaughtException` / `unhandledRejection`
 * handlers that rethrow (printing the whole minified module). They are removed so errors reach our own handling.
 */
function withoutEmscriptenHandlers<T>(fn: () => Promise<T>): Promise<T> {
  const before = {
    uncaughtException: new Set(process.listeners('uncaughtException')),
    unhandledRejection: new Set(process.listeners('unhandledRejection')),
  };
  return fn().finally(() => {
    for (const l of process.listeners('uncaughtException'))
      if (!before.uncaughtException.has(l)) process.removeListener('uncaughtException', l);
    for (const l of process.listeners('unhandledRejection'))
      if (!before.unhandledRejection.has(l)) process.removeListener('unhandledRejection', l);
  });
}

async function initWasm(native: NativeMode): Promise<string> {
  await import('@tensorflow/tfjs-backend-wasm');
  const load = native === 'off' ? null : loadNativeKernels();
  if (native === 'required' && !load?.kernels)
    throw new BackendUnavailableError(
      `native CPU kernels required (GPULAB_NATIVE_KERNELS=required) but ${load?.reason}`,
    );
  registerWasmTrainingKernels(load?.kernels ?? null);
  await withoutEmscriptenHandlers(() => activate('wasm'));
  return 'wasm';
}

async function initCpu(): Promise<string> {
  await import('@tensorflow/tfjs-backend-cpu');
  await activate('cpu');
  return 'cpu';
}

/** Dispatches recorded before TF.js submits its command buffer (TF.js's default is 15). */
export const WEBGPU_SUBMIT_BATCH = 128;

async function initWebgpu(opts: WebgpuOptions): Promise<string> {
  const dawn = await tryImport('webgpu');
  if (!dawn)
    throw new BackendUnavailableError(
      `backend 'webgpu' needs the npm package 'webgpu' (Dawn for Node), which this trainer image lacks`,
    );
  // tfjs-backend-webgpu registers itself only if navigator.gpu exists when it is first imported: set it up first
  const { create, globals } = dawn as { create: (flags: string[]) => unknown; globals: Record<string, unknown> };
  Object.assign(globalThis, globals);
  const g = globalThis as { navigator?: Record<string, unknown> };
  if (!g.navigator) Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  if (!g.navigator!['gpu'])
    Object.defineProperty(g.navigator, 'gpu', {
      value: gpuFor(create(opts.dawnFlags ?? []), opts),
      configurable: true,
    });
  if (!tf.findBackendFactory('webgpu') && !(await importOptional(() => import('@tensorflow/tfjs-backend-webgpu'))))
    throw new BackendUnavailableError(
      `backend 'webgpu' needs the npm package '@tensorflow/tfjs-backend-webgpu', which this trainer image lacks`,
    );
  if (!tf.findBackendFactory('webgpu'))
    throw new BackendUnavailableError(
      'no WebGPU adapter: tfjs-backend-webgpu did not register (navigator.gpu missing)',
    );
  tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', opts.submitBatch ?? WEBGPU_SUBMIT_BATCH);
  registerWebgpuTrainingKernels(opts.kernels ?? true);
  await activate('webgpu');
  return 'webgpu';
}

interface Gpu {
  requestAdapter(o?: Record<string, unknown>): Promise<Adapter | null>;
}
interface Adapter {
  limits: Record<string, number>;
  requestDevice(d?: { requiredLimits?: Record<string, number> }): Promise<unknown>;
}

/**
 * navigator.gpu for TF.js. In compatibility mode (a GL ES adapter, e.g. Mesa's llvmpipe where tests run without a
 * GPU) the adapter is asked for with that feature level, and devices get the adapter's storage-buffer limit
 * (compatibility's default of 4 per stage is below what the kernels bind).
 */
function gpuFor(gpu: unknown, opts: WebgpuOptions): unknown {
  if (opts.featureLevel !== 'compatibility') return gpu;
  const real = gpu as Gpu;
  return {
    requestAdapter: async (o: Record<string, unknown> = {}) => {
      const adapter = await real.requestAdapter({ ...o, featureLevel: 'compatibility' });
      if (!adapter) return null;
      const requestDevice = adapter.requestDevice.bind(adapter);
      return new Proxy(adapter, {
        get(target, key) {
          if (key !== 'requestDevice') return Reflect.get(target, key);
          return (d: { requiredLimits?: Record<string, number> } = {}) =>
            requestDevice({
              ...d,
              requiredLimits: {
                ...d.requiredLimits,
                maxStorageBuffersPerShaderStage: target.limits['maxStorageBuffersPerShaderStage']!,
              },
            });
        },
      });
    },
  };
}

/** The webgpu backend's options. Dawn's instance is made once per process: the first call's flags and level hold. */
export interface WebgpuOptions {
  /** This repository's kernels (webgpu-kernels.ts); false = TF.js's own. Default true. */
  kernels?: boolean;
  /** Dawn's instance flags, e.g. ['backend=opengles'] (tests on Mesa without a GPU). */
  dawnFlags?: string[];
  /** 'compatibility' for adapters that are not core WebGPU (GL ES). Default core. */
  featureLevel?: 'core' | 'compatibility';
  /** WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE. Default WEBGPU_SUBMIT_BATCH. */
  submitBatch?: number;
}

export interface BackendOptions {
  /**
   * Native CPU kernels for wasm (native-kernels.ts): auto = when built, off = wasm kernels only, required = fail when
   * the addon is missing. Default auto.
   */
  native?: NativeMode;
  webgpu?: WebgpuOptions;
}

/** Initialises the backend for `requested`; returns the name of the backend that runs. */
export async function selectBackend(requested: Backend, opts: BackendOptions = {}): Promise<string> {
  const native = opts.native ?? 'auto';
  tf.env().set('PROD', true); // no debug checks, no "install tfjs-node" banner
  registerTrainingGradients();
  switch (requested) {
    case 'cpu':
      return initCpu();
    case 'wasm':
      return initWasm(native);
    case 'webgpu':
      return initWebgpu(opts.webgpu ?? {});
    case 'tensorflow': {
      const name = await initTensorflow();
      if (!name)
        throw new BackendUnavailableError(
          `backend 'tensorflow' needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, which this trainer image lacks`,
        );
      return name;
    }
    case 'auto':
      return (await initTensorflow()) ?? initWasm(native);
  }
}
