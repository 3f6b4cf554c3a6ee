// Runs once per `jest` invocation: builds (or reuses) the template database, migrated with `prisma migrate deploy`,
// that every test file copies; so parallel workers do not all migrate at once.
require('tsx/cjs');
module.exports = async () => {
  // Mesa's EGL (the webgpu kernel tests' GL ES adapter) without a display or session directory. Set here, in the
  // real environment the workers inherit: a test file's process.env is jest's copy, which native code never reads.
  process.env.EGL_PLATFORM ??= 'surfaceless';
  process.env.XDG_RUNTIME_DIR ??= require('node:os').tmpdir();
  const { ensureTemplateDatabase } = require('./packages/testing/src/database.ts');
  await ensureTemplateDatabase();
};
