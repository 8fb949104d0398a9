export * from './databases.js';
export * from './each-backend.js';
export * from './job-specs.js';
