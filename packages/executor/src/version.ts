/**
 * The version this executor reports as `version` (dequeue) and `executorVersion` (heartbeat).
 * The semver core is at least 4.3.0 so Sourcegraph instances send the v2 Job payload (docs/protocol.md,
 * "Dequeue") and its major.minor stays within the "compatible" window of recent instances; the build
 * metadata names the implementation.
 */
export const EXECUTOR_VERSION = '5.3.0+sandfleet.0.1.0';
