import net from 'node:net';
import { SandfleetError } from '@sandfleet/protocol';

/**
 * Host-initiated vsock over Firecracker's unix socket: connect to `uds_path`, send
 * `CONNECT <port>\n`, and Firecracker answers `OK <host port>\n` once a guest listener accepted.
 * The host dials (not the guest) so the executor never has to listen on a path the jailed VMM
 * could write into, and a guest that is not up yet is retried rather than awaited.
 */

export class VsockConnectError extends SandfleetError {}

const MAX_ANSWER_BYTES = 64;

export function connectVsock(udsPath: string, port: number, timeoutMs = 5_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(udsPath);
    let answer = '';
    const fail = (message: string) => {
      socket.destroy();
      reject(new VsockConnectError(`vsock port ${port} via ${udsPath}: ${message}`));
    };
    const timer = setTimeout(() => fail(`no answer to CONNECT within ${timeoutMs} ms`), timeoutMs);
    socket.once('connect', () => socket.write(`CONNECT ${port}\n`));
    socket.on('error', (err) => { clearTimeout(timer); fail(err.message); });
    socket.on('close', () => { clearTimeout(timer); fail('closed before OK (no guest listener on that port?)'); });
    const onData = (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      const nl = answer.indexOf('\n');
      if (nl < 0) {
        if (answer.length > MAX_ANSWER_BYTES) { clearTimeout(timer); fail(`unexpected answer ${JSON.stringify(answer.slice(0, MAX_ANSWER_BYTES))}`); }
        return;
      }
      clearTimeout(timer);
      socket.off('data', onData);
      socket.removeAllListeners('close');
      socket.removeAllListeners('error');
      if (!/^OK \d+$/.test(answer.slice(0, nl))) { fail(`unexpected answer ${JSON.stringify(answer.slice(0, nl))}`); return; }
      const rest = Buffer.from(answer.slice(nl + 1), 'latin1');
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    socket.on('data', onData);
  });
}
