// Stands in for an executor that boots a VM and is then killed: prints "up <qemu pid> <vm dir>".
// With a third argument, {"key", "uplinkNamespace", "dnsServers", "stateDir"}, the VM first gets a
// public job network behind that test uplink, and the line ends with the network's slot file.
import { createJobNetwork } from '../../src/network/job-network.js';
import { NamespaceUplink } from '../../src/network/uplink.js';
import type { GuestImage } from '../../src/sandbox/vm/guest-image.js';
import { QemuVm } from '../../src/sandbox/vm/qemu.js';
import { attachVmNetwork } from '../../src/sandbox/vm/vm-network.js';

const [runDir, imageJson, networkJson] = process.argv.slice(2);
const spec = networkJson ? JSON.parse(networkJson) as { key: string; uplinkNamespace: string; dnsServers: string[]; stateDir: string } : undefined;
const jobNetwork = spec && await createJobNetwork(spec.key, 'public', new NamespaceUplink(spec.uplinkNamespace, spec.dnsServers), spec.stateDir);
const network = jobNetwork && await attachVmNetwork(jobNetwork);
const vm = await QemuVm.boot({ image: JSON.parse(imageJson!) as GuestImage, runDir: runDir!, accelerator: 'tcg', memoryMiB: 128, cpus: 1, bootTimeoutMs: 120_000, ...(network ? { network } : {}) });
process.stdout.write(`up ${vm.pid} ${vm.dir}${network?.record.slotFile ? ` ${network.record.slotFile}` : ''}\n`);
setInterval(() => undefined, 60_000);
