export * from './client';
export * from './datasets';
export * from './errors';
export * from './types';
