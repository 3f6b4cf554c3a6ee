'use strict';
/**
 * Decode worker (worker_threads). Plain CommonJS so it starts with no TypeScript loader — under jest as under
 * `node --import tsx`. Protocol: {id, bytes, op, maxPixels} in; {id, ok: true, data} (transferred) or
 * {id, ok: false, code, message} out. Posts {ready: true} once sharp has loaded. libvips' thread count is process-wide, so it is left as
 * sharp sets it (one per core).
 */
const { parentPort } = require('node:worker_threads');
const kernel = require('./image-kernel.cjs');

parentPort.on('message', async (msg) => {
  try {
    const out = await kernel.transform(msg.bytes, msg.op, msg.maxPixels);
    const data = new Uint8Array(out.byteLength);
    data.set(out);
    parentPort.postMessage({ id: msg.id, ok: true, data }, [data.buffer]);
  } catch (e) {
    parentPort.postMessage({
      id: msg.id,
      ok: false,
      code: e && typeof e.code === 'string' ? e.code : 'ERROR',
      message: e?.message ? String(e.message) : String(e),
    });
  }
});

parentPort.postMessage({ ready: true });
