export * from './module.js';
export * from './references.js';
export * from './lints.js';
export * from './templates.js';
export * from './install-script.js';
export * from './debian-rootfs.js';
