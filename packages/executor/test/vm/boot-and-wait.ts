// Stands in for an executor that boots a VM and is then killed: prints "up <qemu pid> <vm dir>".
import type { GuestImage } from '../../src/sandbox/vm/guest-image.js';
import { QemuVm } from '../../src/sandbox/vm/qemu.js';

const [runDir, imageJson] = process.argv.slice(2);
const vm = await QemuVm.boot({ image: JSON.parse(imageJson!) as GuestImage, runDir: runDir!, accelerator: 'tcg', memoryMiB: 128, cpus: 1, bootTimeoutMs: 120_000 });
process.stdout.write(`up ${vm.pid} ${vm.dir}\n`);
setInterval(() => undefined, 60_000);
