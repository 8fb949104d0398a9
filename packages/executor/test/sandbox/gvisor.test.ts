import { GvisorRuntime } from '../../src/sandbox/oci/gvisor.js';
import { makeRuntimeDeps } from '../../src/sandbox/shared/host.js';
import { defineSandboxSuite } from './suite.js';

defineSandboxSuite('gvisor', { makeRuntime: (config, overrides) => new GvisorRuntime(makeRuntimeDeps(config, overrides)), rootConfinement: 'gvisor' });
