'use strict';
/**
 * Decode worker (worker_threads). Plain CommonJS so it starts with no TypeScript loader — under jest as under
 * `node --import tsx`. Protocol: {id, bytes, op, maxPixels} in (decode + geometry), or {id, kind: 'keep', bytes, op,
 * maxPixels} (the same, and the reply adds the decoded pixels: rgb, width, height), or {id, kind: 'apply', rgb, width,
 * height, op} (geometry on pixels decoded before); {id, ok: true, data, ...} (transferred) or {id, ok: false, code,
 * message} out. Posts {ready: true} once sharp has loaded. libvips' thread count is process-wide, so it is left as
 * sharp sets it (one per core).
 */
const { parentPort } = require('node:worker_threads');
const kernel = require('./image-kernel.cjs');

/** An exact-size copy that can be transferred. */
function copy(bytes) {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out;
}

parentPort.on('message', async (msg) => {
  try {
    if (msg.kind === 'keep') {
      // decode + geometry, and the decoded pixels too (the caller keeps them for later epochs)
      const img = await kernel.decodeRgb(msg.bytes, msg.maxPixels);
      const data = copy(kernel.applyOp(img.data, img.width, img.height, msg.op));
      const rgb = copy(img.data);
      const reply = { id: msg.id, ok: true, data, rgb, width: img.width, height: img.height };
      parentPort.postMessage(reply, [data.buffer, rgb.buffer]);
      return;
    }
    const out =
      msg.kind === 'apply'
        ? kernel.applyOp(msg.rgb, msg.width, msg.height, msg.op)
        : await kernel.transform(msg.bytes, msg.op, msg.maxPixels);
    const data = copy(out);
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
