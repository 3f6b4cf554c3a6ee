export * from './client';
export * from './events';
export * from './jobs';
export * from './ledger';
export * from './quota';
export * from './seed';
export * from './tokens';
export * from './transitions';
