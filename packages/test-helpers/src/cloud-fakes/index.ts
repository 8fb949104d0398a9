export * from './http-server.js';
export * from './cloudwatch.js';
export * from './google-oauth.js';
export * from './cloud-monitoring.js';
export * from './tls.js';
