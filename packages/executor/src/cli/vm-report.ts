import type { ExecutorConfig } from '../config.js';
import { chooseAccelerator } from '../sandbox/vm/accelerator.js';
import { guestImageOutputDigest, guestImagesDir, installedGuestImage } from '../sandbox/vm/guest-image.js';
import { vmRunDir } from '../sandbox/vm/install.js';
import { describeKvm, kvmFacts, kvmUnusableReason, type KvmSources } from '../sandbox/vm/kvm-host.js';
import { vmmTools } from '../sandbox/vm/vmm-tools.js';

/**
 * The VM part of `executor validate`: KVM, the VMM binaries and the guest image. None of it fails
 * validation by itself (a host without VMs is fine); the runtime check decides whether a missing
 * piece matters for the configured runtime.
 */

export interface ReportLine {
  level: 'ok' | 'warn' | 'info';
  text: string;
}

export interface VmReportOptions {
  /** Boot a test guest under KVM (costs a boot; a failing one costs the boot timeout). */
  bootTest: boolean;
  kvm?: KvmSources;
}

export async function vmReport(config: Pick<ExecutorConfig, 'runtimeConfig' | 'host'>, o: VmReportOptions): Promise<ReportLine[]> {
  const lines: ReportLine[] = [];
  const facts = kvmFacts(o.kvm);
  const unusable = kvmUnusableReason(facts);
  lines.push({ level: unusable ? 'warn' : 'ok', text: `KVM: ${describeKvm(facts)}${unusable ? ` — ${unusable}; VMs run under TCG` : ''}` });

  for (const tool of await vmmTools(config.runtimeConfig.firecracker, config.host.path)) {
    if (tool.path) lines.push({ level: 'ok', text: `${tool.name}: ${tool.version ?? '(no version output)'} (${tool.path})` });
    else lines.push({ level: tool.name === 'jailer' ? 'info' : 'warn', text: `${tool.name}: not found; ${tool.fix}` });
  }

  const stateDir = config.runtimeConfig.stateDir;
  const installed = installedGuestImage(guestImagesDir(stateDir));
  if ('missing' in installed) {
    lines.push({ level: 'warn', text: `guest image: ${installed.missing}` });
    return lines;
  }
  const image = installed.image;
  const actual = guestImageOutputDigest(image);
  const intact = actual === image.outputDigest;
  lines.push({
    level: intact ? 'ok' : 'warn',
    text: `guest image: ${image.dir}, kernel ${image.kernelRelease}, input sha256:${image.inputDigest}, output sha256:${image.outputDigest}${intact ? ' (verified)' : ` — the files hash to sha256:${actual}: modified since the build (run \`executor install vm-image\` again)`}`,
  });
  if (o.bootTest && !unusable && intact) {
    const choice = await chooseAccelerator({ image, runDir: vmRunDir(stateDir) });
    lines.push({ level: choice.accelerator === 'kvm' ? 'ok' : 'warn', text: `KVM test boot: ${choice.accelerator === 'kvm' ? 'works' : 'failed'}: ${choice.reason}` });
  } else if (!o.bootTest && !unusable) {
    lines.push({ level: 'info', text: 'KVM test boot: not run (executor validate --boot-test)' });
  }
  return lines;
}
