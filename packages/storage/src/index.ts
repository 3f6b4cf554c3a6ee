export * from './client';
export * from './embedded';
export * from './objects';
export * from './uri';
