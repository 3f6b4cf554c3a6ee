export * from './database';
export * from './policy';
export * from './redis';
export * from './s3';
