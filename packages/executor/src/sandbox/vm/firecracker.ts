import fs from 'node:fs';
import { RuntimeUnavailableError, type Availability, type Runtime } from '../runtime.js';

/** Firecracker needs KVM; this build has no Firecracker driver yet, and says which is missing. */
export class FirecrackerRuntime implements Runtime {
  readonly name = 'firecracker' as const;
  readonly isolating = true;

  async probe(): Promise<Availability> {
    const kvm = fs.existsSync('/dev/kvm');
    return { available: false, reason: kvm ? 'not implemented in this build (/dev/kvm is present)' : 'not implemented: no /dev/kvm here (this host is itself a VM without nested virtualisation)' };
  }

  async prepare(): Promise<never> {
    throw new RuntimeUnavailableError(this.name, (await this.probe()).reason);
  }
}
