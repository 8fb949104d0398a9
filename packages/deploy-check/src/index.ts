export * from './module.js';
export * from './references.js';
export * from './lints.js';
export * from './templates.js';
