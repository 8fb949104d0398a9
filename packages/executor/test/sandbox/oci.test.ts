import { makeRuntimeDeps } from '../../src/runtime/host.js';
import { OciRuntime } from '../../src/runtime/oci.js';
import { defineSandboxSuite } from './suite.js';

defineSandboxSuite('runc', { makeRuntime: (config, overrides) => new OciRuntime(makeRuntimeDeps(config, overrides), 'runc') });
defineSandboxSuite('crun', { makeRuntime: (config, overrides) => new OciRuntime(makeRuntimeDeps(config, overrides), 'crun') });
