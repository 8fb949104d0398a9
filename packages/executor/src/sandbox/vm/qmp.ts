import net from 'node:net';
import { SandfleetError } from '@sandfleet/protocol';

export class QmpError extends SandfleetError {}

/** QMP answers are small; a line past this means something else is on the socket. */
const MAX_QMP_LINE_BYTES = 1024 * 1024;

/**
 * A QMP client for one QEMU's control socket: one command at a time, answers matched in order,
 * asynchronous events skipped. The socket sits in the VM's 0700 directory; the guest cannot reach it.
 */
export class Qmp {
  private buffered = '';
  private waiter: { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => this.onData(c));
    socket.on('close', () => this.fail(new QmpError('the QMP socket closed')));
    socket.on('error', (e) => this.fail(new QmpError(`QMP: ${e.message}`)));
  }

  /** Connects, reads the greeting and leaves capabilities negotiation mode. */
  static async connect(socketPath: string): Promise<Qmp> {
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(socketPath, () => resolve(s));
      s.once('error', reject);
    });
    const qmp = new Qmp(socket);
    await qmp.next();
    await qmp.execute('qmp_capabilities');
    return qmp;
  }

  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const answer = this.next();
    this.socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) })}\n`);
    const r = await answer;
    if (r.error) throw new QmpError(`${command}: ${JSON.stringify(r.error)}`);
    return r.return;
  }

  close(): void {
    this.socket.destroy();
  }

  private next(): Promise<Record<string, unknown>> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let newline: number;
    while ((newline = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, newline);
      this.buffered = this.buffered.slice(newline + 1);
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return this.fail(new QmpError(`QEMU sent a line that is not JSON: ${JSON.stringify(line.slice(0, 80))}`));
      }
      if ('event' in message) continue;
      const w = this.waiter;
      this.waiter = undefined;
      w?.resolve(message);
    }
    if (this.buffered.length > MAX_QMP_LINE_BYTES) this.fail(new QmpError(`QEMU sent a QMP line over ${MAX_QMP_LINE_BYTES} bytes`));
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.waiter?.reject(error);
    this.waiter = undefined;
    this.socket.destroy();
  }
}
