export * from './assessment.ts';
export * from './common.ts';
export * from './contracts.ts';
export * from './crd.ts';
export * from './lifecycle.ts';
export * from './names.ts';
export * from './submission.ts';
export * from './template.ts';
