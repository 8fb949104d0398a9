import { DockerRuntime } from '../../src/runtime/docker.js';
import { findBinary, makeRuntimeDeps } from '../../src/runtime/host.js';
import { startDockerd, type TestDockerd } from './fixtures.js';
import { defineSandboxSuite } from './suite.js';

// The suite starts its own dockerd (no bridge, no iptables) and stops it afterwards.
let dockerd: TestDockerd | undefined;
defineSandboxSuite('docker', {
  makeRuntime: (config, overrides) => new DockerRuntime(makeRuntimeDeps(config, overrides), dockerd?.host ?? 'unix:///nonexistent/docker.sock'),
  rootConfinement: 'docker',
  writableLayerLimited: false,
  before: async () => {
    if (findBinary('dockerd')) dockerd = await startDockerd();
  },
  after: async () => {
    await dockerd?.stop();
  },
});
