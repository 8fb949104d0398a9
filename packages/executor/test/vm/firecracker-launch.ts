// Stands in for an executor that starts a Firecracker VM and is then killed: prints "up <vmm pid> <vm dir>".
import { FAKE_FIRECRACKER_BIN, FAKE_JAILER_BIN } from '@sandfleet/test-helpers/fake-firecracker';
import { FirecrackerVm } from '../../src/sandbox/vm/firecracker/vm.js';

const [runDir, kernel, jailed] = process.argv.slice(2);
const vm = await FirecrackerVm.launch({ firecracker: FAKE_FIRECRACKER_BIN, runDir: runDir!, kernelPath: kernel!, bootArgs: 'panic=-1', vcpus: 1, memoryMiB: 128, workspaceBytes: 16 << 20, jailer: jailed === 'jailed' ? { binary: FAKE_JAILER_BIN, uid: 65534, gid: 65534 } : undefined });
process.stdout.write(`up ${vm.pid} ${vm.dir}\n`);
setInterval(() => undefined, 60_000);
