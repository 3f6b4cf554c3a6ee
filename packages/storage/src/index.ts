export * from './client';
export * from './embedded';
export * from './objects';
export * from './upload-dir';
export * from './uri';
