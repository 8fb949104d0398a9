import type { Socket } from 'node:net';
import { SandfleetError } from '@sandfleet/protocol';

/** The host side of the guest agent's line protocol (see AGENT_SCRIPT for the frames). */
export class AgentProtocolError extends SandfleetError {}

export interface StepResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  /** The agent killed the step when its wall time ran out. */
  timedOut: boolean;
  /** The guest kernel's OOM killer killed a process while the step ran. */
  oomKilled: boolean;
  /** Output past MAX_STEP_OUTPUT_BYTES was passed to onOutput but not kept here. */
  truncated: boolean;
}

export type OutputListener = (stream: 'stdout' | 'stderr', chunk: Buffer) => void;

/** What run() keeps of a step's output; streaming listeners see all of it. */
export const MAX_STEP_OUTPUT_BYTES = 16 * 1024 * 1024;

/** A guest may write anything: a line longer than a frame can be ends the session. */
const MAX_LINE_BYTES = 8 * 1024;
const DEFAULT_ANSWER_GRACE_MS = 30_000;
const FRAME = /^(O|E|EXIT|TIMEOUT|OOM|BAD) (\d+)(?: (\S+))?$/;

interface Pending {
  id: number;
  stdout: Buffer[];
  stderr: Buffer[];
  kept: number;
  truncated: boolean;
  onOutput: OutputListener | undefined;
  deadline: NodeJS.Timeout;
  resolve: (r: StepResult) => void;
  reject: (e: Error) => void;
}

export class AgentClient {
  private buffered = '';
  private nextId = 1;
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private failure: Error | undefined;
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private ready = false;

  /**
   * `answerGraceMs`: how long past a step's wall time the guest may take to report it before the
   * host gives up on the guest (the agent kills at the wall time; a guest that does not answer
   * then is hung or hostile).
   */
  constructor(private readonly socket: Socket, private readonly answerGraceMs = DEFAULT_ANSWER_GRACE_MS) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('close', () => this.fail(new AgentProtocolError('the agent channel closed')));
    socket.on('error', (err) => this.fail(new AgentProtocolError(`agent channel: ${err.message}`)));
  }

  /** Resolves when the agent has said READY. */
  waitReady(): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /**
   * Runs `script` with `sh -c` in the guest; steps run one at a time, in call order. `onOutput`
   * gets each chunk as the agent forwards it.
   */
  run(script: string, wallSeconds: number, onOutput?: OutputListener): Promise<StepResult> {
    if (!Number.isInteger(wallSeconds) || wallSeconds < 1) throw new RangeError('wallSeconds must be a positive integer');
    const step = this.queue.then(() => this.send(script, wallSeconds, onOutput));
    this.queue = step.catch(() => undefined);
    return step;
  }

  private send(script: string, wallSeconds: number, onOutput: OutputListener | undefined): Promise<StepResult> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const deadline = setTimeout(() => this.fail(new AgentProtocolError(`the guest did not report step ${id} within ${wallSeconds} s + ${this.answerGraceMs} ms`)), wallSeconds * 1000 + this.answerGraceMs);
      this.pending = { id, stdout: [], stderr: [], kept: 0, truncated: false, onOutput, deadline, resolve, reject };
      this.socket.write(`RUN ${id} ${wallSeconds} ${Buffer.from(script).toString('base64')}\n`);
    });
  }

  private onData(chunk: string): void {
    this.buffered += chunk;
    let newline: number;
    while ((newline = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, newline).replace(/\r$/, '');
      this.buffered = this.buffered.slice(newline + 1);
      this.onLine(line);
    }
    if (this.buffered.length > MAX_LINE_BYTES) this.fail(new AgentProtocolError(`the agent sent a line over ${MAX_LINE_BYTES} bytes`));
  }

  private onLine(line: string): void {
    if (line === 'READY') {
      this.ready = true;
      for (const w of this.readyWaiters.splice(0)) w.resolve();
      return;
    }
    const m = FRAME.exec(line);
    const step = this.pending;
    if (!m || !step || Number(m[2]) !== step.id) return this.fail(new AgentProtocolError(`unexpected agent frame: ${JSON.stringify(line.slice(0, 80))}`));
    const [, kind, , arg = ''] = m;
    if (kind === 'O' || kind === 'E') this.output(step, kind === 'O' ? 'stdout' : 'stderr', Buffer.from(arg, 'base64'));
    else if (kind === 'BAD') this.settle(undefined, new AgentProtocolError(`the agent rejected step ${step.id}`));
    else {
      const exitCode = Number(arg);
      if (!/^\d+$/.test(arg)) return this.fail(new AgentProtocolError(`bad exit code ${JSON.stringify(arg)}`));
      this.settle({ stdout: Buffer.concat(step.stdout).toString(), stderr: Buffer.concat(step.stderr).toString(), exitCode, timedOut: kind === 'TIMEOUT', oomKilled: kind === 'OOM', truncated: step.truncated });
    }
  }

  private output(step: Pending, stream: 'stdout' | 'stderr', chunk: Buffer): void {
    step.onOutput?.(stream, chunk);
    if (step.kept + chunk.length > MAX_STEP_OUTPUT_BYTES) {
      step.truncated = true;
      return;
    }
    step.kept += chunk.length;
    (stream === 'stdout' ? step.stdout : step.stderr).push(chunk);
  }

  private settle(result: StepResult | undefined, error?: Error): void {
    const step = this.pending;
    this.pending = undefined;
    if (step) clearTimeout(step.deadline);
    if (result) step?.resolve(result);
    else step?.reject(error!);
  }

  /** Ends the session: every waiter and the running step get `error`. */
  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const w of this.readyWaiters.splice(0)) w.reject(error);
    this.settle(undefined, error);
    this.socket.destroy();
  }
}
