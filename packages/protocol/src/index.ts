export * from './queues.js';
export * from './job.js';
export * from './log-entry.js';
export * from './executor-api.js';
export * from './routes.js';
export * from './version.js';
