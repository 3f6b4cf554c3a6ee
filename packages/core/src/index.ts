export * from './admission';
export * from './errors';
export * from './exit-codes';
export * from './job-spec';
export * from './job-spec-parse';
export * from './money';
export * from './status';
export * from './webhook-url';
