import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
// The guest's side of the bridge is the executor's guest image: the same names, not copies.
import { AGENT_PORT_NAME, VSOCK_LOOPBACK_BRIDGE_ARG } from '../../executor/src/sandbox/vm/guest-scripts.js';

/**
 * The guest of the fake Firecracker started as FAKE_FIRECRACKER_QEMU_BIN: at InstanceStart it boots what the
 * API configured (kernel, initrd, boot args, vCPUs, memory, drives in Firecracker's order, taps with
 * their MACs) in QEMU microvm under TCG, with the guest's serial console on its own stdout, as
 * Firecracker does. There is no vsock device without vhost-vsock, so the guest's vsock listener is
 * reached through its loopback bridge (a virtio-serial port the guest relays to vsock CID 1), and a
 * `CONNECT <port>` on the vsock socket is spliced onto that port. Drives get no serial, as under
 * Firecracker. QEMU dies with the fake (parent-death signal), so killing the "VMM" kills the guest.
 */

export interface ConfiguredVm {
  bootSource: { kernel_image_path: string; initrd_path?: string; boot_args?: string };
  machine: { vcpu_count: number; mem_size_mib: number };
  /** In Firecracker's attach order: the root drive first, then as configured. */
  drives: { path_on_host: string; is_read_only: boolean }[];
  interfaces: { host_dev_name: string; guest_mac?: string }[];
}


function tscKhz(): number {
  const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1];
  return Math.round(Number(mhz ?? '2000') * 1000);
}

export class QemuBackedGuest {
  private readonly child: ChildProcess;
  private spliced = false;

  constructor(vm: ConfiguredVm, private readonly bridgeSocket: string, resolve: (p: string) => string, onExit: () => void) {
    const cmdline = `${vm.bootSource.boot_args ?? ''} tsc_early_khz=${tscKhz()} ${VSOCK_LOOPBACK_BRIDGE_ARG}`.trim();
    const args = [
      '--pdeathsig', 'KILL', 'qemu-system-x86_64',
      '-M', 'microvm', '-accel', 'tcg', '-cpu', 'max',
      '-m', String(vm.machine.mem_size_mib), '-smp', String(vm.machine.vcpu_count),
      '-nodefaults', '-no-user-config', '-nographic', '-monitor', 'none', '-no-reboot',
      '-serial', 'stdio',
      '-kernel', resolve(vm.bootSource.kernel_image_path),
      ...(vm.bootSource.initrd_path ? ['-initrd', resolve(vm.bootSource.initrd_path)] : []),
      '-append', cmdline,
      '-chardev', `socket,id=bridge,path=${bridgeSocket},server=on,wait=off`,
      '-device', 'virtio-serial-device',
      '-device', `virtserialport,chardev=bridge,name=${AGENT_PORT_NAME}`,
      ...vm.drives.flatMap((d, i) => [
        '-drive', `id=d${i},if=none,format=raw,file=${resolve(d.path_on_host).replaceAll(',', ',,')},readonly=${d.is_read_only ? 'on' : 'off'}`,
        '-device', `virtio-blk-device,drive=d${i}`,
      ]),
      ...(vm.interfaces.length === 0 ? ['-nic', 'none'] : vm.interfaces.flatMap((n, i) => [
        '-netdev', `tap,id=n${i},ifname=${n.host_dev_name},script=no,downscript=no`,
        '-device', `virtio-net-device,netdev=n${i}${n.guest_mac ? `,mac=${n.guest_mac}` : ''}`,
      ])),
    ];
    this.child = spawn('setpriv', args, { stdio: ['ignore', 'inherit', 'inherit'] });
    this.child.once('exit', onExit);
  }

  /** Splices a host `CONNECT` onto the bridge port; closes it when the guest is not reachable, as Firecracker does. */
  connect(host: net.Socket, port: number): void {
    if (this.spliced || !fs.existsSync(this.bridgeSocket)) {
      host.destroy();
      return;
    }
    const guest = net.connect(this.bridgeSocket, () => {
      this.spliced = true;
      host.write(`OK ${1_073_741_824 + port}\n`);
      host.pipe(guest);
      guest.pipe(host);
    });
    const close = () => { host.destroy(); guest.destroy(); };
    guest.on('error', close);
    host.on('error', close);
    guest.on('close', close);
    host.on('close', close);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

/** Where the bridge's socket goes: beside the API socket (short enough for a socket path). */
export function bridgeSocketPath(apiSock: string): string {
  return path.join(path.dirname(apiSock), 'guest-bridge.sock');
}
