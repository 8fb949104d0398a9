import fs from 'node:fs';
import path from 'node:path';
import { chooseAccelerator } from './accelerator.js';
import { ensureGuestImage, guestImagesDir, type GuestImage } from './guest-image.js';
import { QemuVm } from './qemu.js';

/** Debian packages the microVM runs under and its disks are made with (the guest itself is built from downloads). */
export const VM_PACKAGES = ['qemu-system-x86', 'e2fsprogs'];

export interface VmInstallStep {
  title: string;
  run: () => Promise<string>;
}

/** Where VMs keep their per-VM directories (agent socket, console log). */
export function vmRunDir(stateDir: string): string {
  return path.join(stateDir, 'vm-run');
}

/**
 * `executor install vm-image`: builds the guest image from Debian packages into the state
 * directory, then boots it once and runs a command, choosing KVM only if that test boot works.
 */
export function vmImageInstallSteps(stateDir: string, dryRun: boolean): VmInstallStep[] {
  const imagesDir = guestImagesDir(stateDir);
  let image: GuestImage | undefined;
  return [
    {
      title: `microVM guest image in ${imagesDir} (Debian's cloud kernel as a PVH vmlinux, busybox and the agent in an initramfs)`,
      run: async () => {
        if (dryRun) return 'would download linux-image-cloud-amd64 and busybox-static with apt-get download and build the image';
        const built = await ensureGuestImage(imagesDir);
        image = built;
        fs.writeFileSync(path.join(imagesDir, 'current'), `${built.inputDigest}\n`);
        return `${built.cached ? 'already built' : 'built'}: kernel ${built.kernelRelease}, input sha256:${built.inputDigest}, output sha256:${built.outputDigest}`;
      },
    },
    {
      title: 'microVM test boot (KVM if a test guest boots with it, else TCG)',
      run: async () => {
        if (dryRun || !image) return dryRun ? 'would boot the guest and run a command' : 'skipped: no image';
        const runDir = vmRunDir(stateDir);
        const choice = await chooseAccelerator({ image, runDir });
        const vm = await QemuVm.boot({ image, runDir, accelerator: choice.accelerator, memoryMiB: 256, cpus: 1 });
        try {
          const started = Date.now();
          const r = await vm.run('uname -r', 10);
          if (r.exitCode !== 0) throw new Error(`uname -r in the guest exited ${r.exitCode}: ${r.stderr.trim()}`);
          return `${choice.accelerator} (${choice.reason}): booted in ${vm.bootMs} ms, \`uname -r\` → ${r.stdout.trim()} in ${Date.now() - started} ms`;
        } finally {
          await vm.teardown();
        }
      },
    },
  ];
}
