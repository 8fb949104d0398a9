import { BwrapRuntime } from '../../src/sandbox/oci/bwrap.js';
import { makeRuntimeDeps } from '../../src/sandbox/shared/host.js';
import { defineSandboxSuite } from './suite.js';

defineSandboxSuite('bwrap', { makeRuntime: (config, overrides) => new BwrapRuntime(makeRuntimeDeps(config, overrides)) });
