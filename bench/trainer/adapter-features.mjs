// What the WebGPU adapter offers (features such as shader-f16 and timestamp-query, a few limits, its info), as one
// JSON line: run by bench/trainer/gpu.sh on a lent GPU machine next to the Dawn addon (`webgpu` package) it carries.
//   node bench/trainer/adapter-features.mjs [dawn flags, e.g. enable-dawn-features=allow_unsafe_apis]
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const gpu = create(process.argv.slice(2));
const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
if (!adapter) {
  console.log(JSON.stringify({ bench: 'webgpu-adapter', adapter: null }));
  process.exit(1);
}
const info = adapter.info ?? {};
const limits = {};
for (const k of [
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
])
  limits[k] = adapter.limits[k];
console.log(
  JSON.stringify({
    bench: 'webgpu-adapter',
    flags: process.argv.slice(2),
    info: { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description },
    features: [...adapter.features].sort(),
    limits,
  }),
);
process.exit(0);
