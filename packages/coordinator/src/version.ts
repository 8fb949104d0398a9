/**
 * The version executors are compared with on the executors page: the Sourcegraph release whose
 * executor API this coordinator serves, with build metadata naming the implementation. It moves
 * with the executor's EXECUTOR_VERSION (a test checks they match).
 */
export const COORDINATOR_VERSION = '5.3.0+sandfleet.0.1.0';
