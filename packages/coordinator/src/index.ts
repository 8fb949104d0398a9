export { createApp } from './app.js';
export { loadConfig, ConfigError, type CoordinatorConfig } from './config.js';
export { startCoordinator, type RunningCoordinator } from './server.js';
export { JobWaiter } from './executor-api/long-poll.js';
export { Metrics } from './metrics.js';
export { QueueCatalog, type QueueSettings } from './queue-catalog.js';
