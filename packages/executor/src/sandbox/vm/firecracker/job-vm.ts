import { SandfleetError } from '@sandfleet/protocol';
import { AgentClient, type OutputListener, type StepResult } from '../agent-client.js';
import { AGENT_OVER_VSOCK_ARG, AGENT_VSOCK_PORT } from '../guest-scripts.js';
import type { JobVm } from '../vm-sandbox.js';
import { connectVsock } from './vsock.js';
import { FirecrackerVm, type FirecrackerVmOptions } from './vm.js';

/**
 * A Firecracker VM running the guest agent: started through the API, then the agent reached over
 * vsock (the guest's init listens on AGENT_VSOCK_PORT when the command line says so). Until the
 * guest listens, Firecracker closes a CONNECT, so the host dials again until the boot deadline.
 */
export class FirecrackerAgentError extends SandfleetError {}

/** The kernel command line every job VM gets: serial console, reboot ends the VM, no PCI scan. */
export const FIRECRACKER_BOOT_ARGS = ['console=ttyS0', 'reboot=k', 'panic=1', 'pci=off', 'quiet', AGENT_OVER_VSOCK_ARG];

const REDIAL_MS = 50;

export class FirecrackerJobVm implements JobVm {
  bootMs = 0;
  readonly startedHow = 'booted';

  private constructor(readonly vm: FirecrackerVm, private readonly agent: AgentClient) {}

  /** `kernelArgs` are appended to FIRECRACKER_BOOT_ARGS (e.g. the guest's network settings). */
  static async start(o: Omit<FirecrackerVmOptions, 'bootArgs'> & { kernelArgs?: string[]; bootTimeoutMs: number; signal?: AbortSignal }): Promise<FirecrackerJobVm> {
    const started = Date.now();
    const deadline = started + o.bootTimeoutMs;
    const vm = await FirecrackerVm.launch({ ...o, bootArgs: [...FIRECRACKER_BOOT_ARGS, ...(o.kernelArgs ?? [])].join(' ') });
    try {
      const agent = new AgentClient(await dialAgent(vm, deadline, o.signal));
      const timer = setTimeout(() => agent.fail(new FirecrackerAgentError('the agent did not say READY in time')), Math.max(0, deadline - Date.now()));
      const onAbort = () => agent.fail(new FirecrackerAgentError('boot aborted'));
      o.signal?.addEventListener('abort', onAbort);
      try {
        await agent.waitReady();
      } finally {
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
      }
      const jobVm = new FirecrackerJobVm(vm, agent);
      jobVm.bootMs = Date.now() - started;
      return jobVm;
    } catch (err) {
      const detail = `${err instanceof Error ? err.message : String(err)}; ${vm.diagnostics()}`;
      await vm.cleanup();
      throw new FirecrackerAgentError(`the Firecracker VM started but its agent did not answer: ${detail}`);
    }
  }

  run(script: string, wallSeconds: number, onOutput?: OutputListener): Promise<StepResult> {
    return this.agent.run(script, wallSeconds, onOutput);
  }

  /** Kills the VMM (the job's disks are thrown away, so there is nothing to shut down cleanly) and removes its directory. */
  async teardown(): Promise<void> {
    this.agent.fail(new FirecrackerAgentError('the VM was torn down'));
    await this.vm.cleanup();
  }
}

async function dialAgent(vm: FirecrackerVm, deadline: number, signal: AbortSignal | undefined): Promise<import('node:net').Socket> {
  let last = 'no attempt';
  while (Date.now() < deadline) {
    if (signal?.aborted) throw new FirecrackerAgentError('boot aborted');
    if (!vm.running) throw new FirecrackerAgentError(`firecracker exited before the agent answered (${last})`);
    try {
      return await connectVsock(vm.vsockPath, AGENT_VSOCK_PORT, Math.max(1, Math.min(5_000, deadline - Date.now())));
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
      await new Promise((r) => setTimeout(r, REDIAL_MS));
    }
  }
  throw new FirecrackerAgentError(`no agent on vsock port ${AGENT_VSOCK_PORT} before the boot deadline (last: ${last})`);
}
