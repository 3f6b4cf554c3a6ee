export { admit } from './engine';
export * from './fair-share';
export * from './ledger-math';
export { admissionOrder, fairShareKeys } from './order';
export * from './quote';
export * from './snapshot';
