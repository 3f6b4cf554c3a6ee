/** @type {import('jest').Config} */
const swc = [
  '@swc/jest',
  {
    jsc: { parser: { syntax: 'typescript', decorators: false, dynamicImport: true }, target: 'es2022' },
    module: { type: 'commonjs' },
  },
];
const common = {
  transform: { '^.+\\.(t|j)sx?$': swc },
  transformIgnorePatterns: ['/node_modules/(?!(@kubernetes/client-node|openid-client|oauth4webapi|jose|cookie)/)'],
  testEnvironment: 'node',
  moduleFileExtensions: ['ts', 'tsx', 'js', 'mjs', 'cjs', 'json'],
  setupFiles: ['<rootDir>/jest.setup.js'],
  // Dawn's ESM entry cannot load under jest: the same addon through a CommonJS shim (apps/trainer/test/helpers).
  moduleNameMapper: { '^webgpu$': '<rootDir>/apps/trainer/test/helpers/webgpu-cjs.cjs' },
};
module.exports = {
  testTimeout: 240000,
  globalSetup: '<rootDir>/jest.global-setup.js',
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/packages/*/test/**/*.test.ts', '<rootDir>/apps/*/test/unit/**/*.test.ts'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/apps/*/test/integration/**/*.test.ts', '<rootDir>/test/**/*.test.ts'],
    },
  ],
};
