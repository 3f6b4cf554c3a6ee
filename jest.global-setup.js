// Runs once per `jest` invocation: builds (or reuses) the template database, migrated with `prisma migrate deploy`,
// that every test file copies; so parallel workers do not all migrate at once.
require('tsx/cjs');
module.exports = async () => {
  const { ensureTemplateDatabase } = require('./packages/testing/src/database.ts');
  await ensureTemplateDatabase();
};
