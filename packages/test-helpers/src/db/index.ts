export * from './databases.js';
export * from './each-backend.js';
