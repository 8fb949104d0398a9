import { BwrapRuntime } from '../../src/runtime/bwrap.js';
import { makeRuntimeDeps } from '../../src/runtime/host.js';
import { defineSandboxSuite } from './suite.js';

defineSandboxSuite('bwrap', { makeRuntime: (config, overrides) => new BwrapRuntime(makeRuntimeDeps(config, overrides)) });
