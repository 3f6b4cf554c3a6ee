export * from './client';
export * from './dataset-keys';
export * from './direct-upload';
export * from './embedded';
export * from './objects';
export * from './sigv4';
export * from './upload-dir';
export * from './uri';
