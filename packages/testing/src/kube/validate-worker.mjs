// Validates Kubernetes documents against the upstream OpenAPI schemas with kubernetes-models, in a worker thread:
// kubernetes-models is ESM-only, and this file is loaded by Node itself (not by Jest's CommonJS transform).
import { parentPort } from 'node:worker_threads';

const modules = new Map();

/** `v1` → kubernetes-models/v1; `apps/v1` → kubernetes-models/apps/v1; `coordination.k8s.io/v1` likewise. */
async function modelClass(apiVersion, kind) {
  if (typeof apiVersion !== 'string' || !/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion))
    throw new Error(`unknown apiVersion ${JSON.stringify(apiVersion)}`);
  let mod = modules.get(apiVersion);
  if (!mod) {
    mod = await import(`kubernetes-models/${apiVersion}`);
    modules.set(apiVersion, mod);
  }
  const cls = mod[kind];
  if (typeof cls !== 'function') throw new Error(`no kind ${JSON.stringify(kind)} in ${apiVersion}`);
  return cls;
}

/** `/spec/containers/0/resources/limits/nvidia.com~1gpu` → `spec.containers[0].resources.limits[nvidia.com/gpu]`. */
function jsonPointerToField(pointer) {
  return String(pointer ?? '')
    .split('/')
    .filter(Boolean)
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : p.includes('.') || p.includes('/') ? `[${p}]` : i ? `.${p}` : p))
    .join('');
}

parentPort.on('message', async (msg) => {
  try {
    const Model = await modelClass(msg.apiVersion, msg.kind);
    new Model(msg.object).validate();
    parentPort.postMessage({ id: msg.id, ok: true });
  } catch (e) {
    const errors = Array.isArray(e?.errors)
      ? e.errors.map((x) => ({ field: jsonPointerToField(x.instancePath), message: String(x.message) }))
      : [];
    parentPort.postMessage({ id: msg.id, ok: false, message: String(e?.message ?? e), errors });
  }
});
