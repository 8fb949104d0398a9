export { createApp } from './app.js';
export { loadConfig, ConfigError, type CoordinatorConfig } from './config.js';
export { startCoordinator, type RunningCoordinator } from './server.js';
