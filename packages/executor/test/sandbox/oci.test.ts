import { makeRuntimeDeps } from '../../src/sandbox/shared/host.js';
import { OciRuntime } from '../../src/sandbox/oci/oci.js';
import { defineSandboxSuite } from './suite.js';

defineSandboxSuite('runc', { makeRuntime: (config, overrides) => new OciRuntime(makeRuntimeDeps(config, overrides), 'runc') });
defineSandboxSuite('crun', { makeRuntime: (config, overrides) => new OciRuntime(makeRuntimeDeps(config, overrides), 'crun') });
