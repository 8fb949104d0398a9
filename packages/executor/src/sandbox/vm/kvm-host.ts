import fs from 'node:fs';

/**
 * What this host offers for hardware virtualisation, read from /dev, /proc/cpuinfo and
 * /proc/modules. `/dev/kvm` alone is not enough: a nested PVM module (kvm_pvm) provides it without
 * VMX/SVM, and a stock guest kernel cannot run on it.
 */
export interface KvmFacts {
  device: string;
  present: boolean;
  accessible: boolean;
  /** `vmx` (Intel), `svm` (AMD), or undefined when the CPU shows neither. */
  cpuFlag: 'vmx' | 'svm' | undefined;
  /** Loaded KVM modules: kvm_intel, kvm_amd, kvm_pvm. */
  modules: string[];
}

export interface KvmSources {
  device?: string;
  cpuinfo?: string;
  modules?: string;
}

function read(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

export function kvmFacts(s: KvmSources = {}): KvmFacts {
  const device = s.device ?? '/dev/kvm';
  const present = fs.existsSync(device);
  let accessible = false;
  try {
    fs.accessSync(device, fs.constants.R_OK | fs.constants.W_OK);
    accessible = true;
  } catch {
    // absent or no permission
  }
  const flags = /^flags\s*:(.*)$/m.exec(s.cpuinfo ?? read('/proc/cpuinfo'))?.[1] ?? '';
  const cpuFlag = /\bvmx\b/.test(flags) ? 'vmx' : /\bsvm\b/.test(flags) ? 'svm' : undefined;
  const modules = (s.modules ?? read('/proc/modules')).split('\n').map((l) => l.split(' ')[0]!).filter((m) => /^kvm_(intel|amd|pvm)$/.test(m));
  return { device, present, accessible, cpuFlag, modules };
}

/** Why KVM cannot run a stock guest here, or undefined when it looks usable (a test boot decides). */
export function kvmUnusableReason(f: KvmFacts): string | undefined {
  if (!f.present) return `${f.device} is absent (no KVM on this host, or a VM without nested virtualisation)`;
  if (!f.accessible) return `${f.device} is not readable and writable by this user (add it to the kvm group)`;
  if (!f.cpuFlag) {
    return f.modules.includes('kvm_pvm')
      ? `${f.device} comes from the nested PVM module kvm_pvm without VMX/SVM: it cannot boot a stock (non-PVM) guest kernel`
      : `${f.device} exists but the CPU shows no vmx/svm flag`;
  }
  return undefined;
}

export function describeKvm(f: KvmFacts): string {
  return `${f.device} ${f.present ? (f.accessible ? 'present and accessible' : 'present, not accessible') : 'absent'}; CPU flag: ${f.cpuFlag ?? 'none (no vmx/svm)'}; modules: ${f.modules.join(', ') || 'none'}`;
}
