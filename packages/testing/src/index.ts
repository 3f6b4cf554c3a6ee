export * from './database';
export * from './kube';
export * from './policy';
export * from './redis';
export * from './s3';
