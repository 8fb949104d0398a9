import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { SandfleetError } from '@sandfleet/protocol';
import type { GuestImage } from './guest-image.js';
import { imageSerial, WORKSPACE_SERIAL } from './guest-step.js';
import { QemuVm, type Accelerator, type QemuVmOptions, type VmDisk } from './qemu.js';
import { IMAGE_SLOT_BYTES, placeholderDisk } from './vm-disks.js';
import { DETACHED_NIC_ARGS, type VmNetwork } from './vm-network.js';
import type { VmmIdentity } from './vmm-identity.js';
import { restoreGuest, saveGuestState } from './warm-start.js';
import { MAX_JOB_IMAGES } from './vm-sandbox.js';

/**
 * Warm start per job for the qemu runtime. A job's VM is not booted but restored from a saved idle
 * guest of the same shape: memory, vCPUs, accelerator, workspace size, whether it has a NIC, and
 * its kernel command line. That guest was booted once with the job device set, every slot on a
 * placeholder (the workspace slot on an empty file of the workspace size, MAX_JOB_IMAGES image
 * slots on one empty IMAGE_SLOT_BYTES file, the NIC on a hub port leading nowhere), and saved with
 * its agent idle. A restore attaches the job's own workspace and image disks to those slots (and
 * the NIC to the job's tap): migration carries device state, not disk contents, and every disk has
 * the size the guest kernel saw. The setup script drops the guest's cached blocks of each disk
 * before it mounts them, and the restore's first step reseeds the guest's RNG and sets its clock
 * (warm-start.ts).
 *
 * A template is saved the first time its shape is needed (one save at a time per shape), kept
 * under `<runDir>/../vm-templates/` for later executors of the same build, and thrown away when a
 * restore from it fails (a QEMU upgrade, say): that job boots cold, and the next one saves anew.
 */
export class JobTemplateError extends SandfleetError {}

export interface TemplateShape {
  image: GuestImage;
  accelerator: Accelerator;
  memoryMiB: number;
  cpus: number;
  workspaceBytes: number;
  /** The guest's network settings on its command line; a NIC exists when there are any. */
  kernelArgs: string[];
  qemuBinary?: string;
}

const SAVE_TIMEOUT_MS = 120_000;

function fingerprint(shape: TemplateShape): string {
  const { image, accelerator, memoryMiB, cpus, workspaceBytes, kernelArgs, qemuBinary } = shape;
  return createHash('sha256')
    .update(JSON.stringify({ format: 'sandfleet-job-template/1', image: image.outputDigest, accelerator, memoryMiB, cpus, workspaceBytes, kernelArgs, imageSlots: MAX_JOB_IMAGES, slotBytes: IMAGE_SLOT_BYTES, qemu: qemuBinary ?? 'qemu-system-x86_64' }))
    .digest('hex');
}

/** The job's disks in the template's slots: workspace, its images, then placeholders. */
export function slotDisks(workspace: VmDisk, images: VmDisk[], imagePlaceholder: string): VmDisk[] {
  if (images.length > MAX_JOB_IMAGES) throw new JobTemplateError(`${images.length} images; a VM has ${MAX_JOB_IMAGES} image slots`);
  const filled = Array.from({ length: MAX_JOB_IMAGES }, (_, i) => images[i] ?? { path: imagePlaceholder, serial: imageSerial(i), readOnly: true });
  return [workspace, ...filled];
}

export class JobTemplates {
  private readonly saving = new Map<string, Promise<string>>();
  readonly dir: string;

  constructor(private readonly runDir: string, private readonly vmPrefix?: string) {
    this.dir = path.join(path.dirname(runDir), 'vm-templates');
  }

  /** The one empty file every unused image slot (and every slot of a template) is attached to. */
  async imagePlaceholder(): Promise<string> {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.dir, 'image-slot.placeholder');
    await placeholderDisk(file, IMAGE_SLOT_BYTES);
    return file;
  }

  /** The saved state for `shape`, saving it first when there is none yet. */
  stateFor(shape: TemplateShape): Promise<string> {
    const key = fingerprint(shape);
    const file = path.join(this.dir, `${key}.state`);
    if (fs.existsSync(file) && fs.existsSync(`${file}.json`)) return Promise.resolve(file);
    let pending = this.saving.get(key);
    if (!pending) {
      pending = this.save(shape, file, key).finally(() => this.saving.delete(key));
      this.saving.set(key, pending);
    }
    return pending;
  }

  private async save(shape: TemplateShape, file: string, key: string): Promise<string> {
    const imageSlot = await this.imagePlaceholder();
    const workspace = path.join(this.dir, `${key}.workspace.placeholder`);
    await placeholderDisk(workspace, shape.workspaceBytes);
    const disks = slotDisks({ path: workspace, serial: WORKSPACE_SERIAL, readOnly: false }, [], imageSlot);
    const network = shape.kernelArgs.length ? { qemuArgs: DETACHED_NIC_ARGS, kernelArgs: shape.kernelArgs, spawnPrefix: [], record: { namespaces: [] } } : undefined;
    const vm = await QemuVm.boot({ ...this.vmOptions(shape), disks, control: true, ...(network ? { network } : {}) });
    try {
      await saveGuestState(vm, file, SAVE_TIMEOUT_MS, key);
    } finally {
      await vm.teardown();
      fs.rmSync(workspace, { force: true });
    }
    return file;
  }

  /**
   * Restores a job VM of `shape` with `disks` (slotDisks) on `network`. A failed restore discards
   * the template, so the caller's cold boot is followed by a fresh save.
   */
  async restore(shape: TemplateShape, o: { vmDir: string; disks: VmDisk[]; network: VmNetwork; signal: AbortSignal; bootTimeoutMs: number; confine?: VmmIdentity }): Promise<QemuVm> {
    const key = fingerprint(shape);
    const file = await this.stateFor(shape);
    try {
      const { vmDir, disks, network, signal, bootTimeoutMs, confine } = o;
      return await restoreGuest({ ...this.vmOptions(shape), vmDir, disks, network, signal, bootTimeoutMs, ...(confine ? { confine } : {}) }, file, key);
    } catch (err) {
      if (!o.signal.aborted) {
        fs.rmSync(file, { force: true });
        fs.rmSync(`${file}.json`, { force: true });
      }
      throw err;
    }
  }

  private vmOptions(shape: TemplateShape): QemuVmOptions {
    return {
      image: shape.image, runDir: this.runDir, accelerator: shape.accelerator, memoryMiB: shape.memoryMiB, cpus: shape.cpus, kernelArgs: [],
      ...(shape.qemuBinary ? { qemuBinary: shape.qemuBinary } : {}), ...(this.vmPrefix ? { vmPrefix: this.vmPrefix } : {}),
    };
  }
}
