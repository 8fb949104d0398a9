import { GvisorRuntime } from '../../src/runtime/gvisor.js';
import { makeRuntimeDeps } from '../../src/runtime/host.js';
import { defineSandboxSuite } from './suite.js';

defineSandboxSuite('gvisor', { makeRuntime: (config, overrides) => new GvisorRuntime(makeRuntimeDeps(config, overrides)), rootConfinement: 'gvisor' });
