import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeTempDir, removeTempDir } from '@sandfleet/test-helpers';
import { AgentClient, AgentProtocolError } from '../../src/sandbox/vm/agent-client.js';

/**
 * The host side of the agent protocol against a hostile "guest": a real Unix socket whose far end
 * answers each request line with whatever the test scripts.
 */
describe('agent client against a hostile guest', () => {
  let dir: string;
  before(() => {
    dir = makeTempDir('sandfleet-agent-client-');
  });
  after(() => removeTempDir(dir));

  async function session(answer: (request: string, guest: net.Socket) => void, answerGraceMs?: number): Promise<{ client: AgentClient; close: () => Promise<void> }> {
    const socketPath = path.join(dir, `agent-${Math.random().toString(36).slice(2)}.sock`);
    const server = net.createServer((guest) => {
      guest.write('READY\n');
      let buffered = '';
      guest.on('data', (c) => {
        buffered += c.toString();
        let nl: number;
        while ((nl = buffered.indexOf('\n')) >= 0) {
          answer(buffered.slice(0, nl), guest);
          buffered = buffered.slice(nl + 1);
        }
      });
      guest.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(socketPath, () => resolve(s));
      s.once('error', reject);
    });
    const client = new AgentClient(socket, answerGraceMs);
    await client.waitReady();
    return { client, close: () => { client.fail(new AgentProtocolError('test over')); return new Promise((r) => server.close(() => r())); } };
  }

  it('sends the script base64-encoded with its id and wall time, and assembles the frames', async () => {
    const requests: string[] = [];
    const { client, close } = await session((req, guest) => {
      requests.push(req);
      const id = req.split(' ')[1];
      guest.write(`O ${id} ${Buffer.from('out').toString('base64')}\nE ${id} ${Buffer.from('err').toString('base64')}\nEXIT ${id} 7\n`);
    });
    try {
      assert.deepEqual(await client.run("echo 'a b'\nexit 7", 5), { stdout: 'out', stderr: 'err', exitCode: 7, timedOut: false, oomKilled: false, truncated: false });
      assert.deepEqual(requests, [`RUN 1 5 ${Buffer.from("echo 'a b'\nexit 7").toString('base64')}`]);
    } finally {
      await close();
    }
  });

  it('reports an OOM kill the agent saw during the step', async () => {
    const { client, close } = await session((req, guest) => guest.write(`OOM ${req.split(' ')[1]} 137\n`));
    try {
      assert.deepEqual(await client.run('hog', 5), { stdout: '', stderr: '', exitCode: 137, timedOut: false, oomKilled: true, truncated: false });
    } finally {
      await close();
    }
  });

  for (const [what, reply] of [
    ['a frame for another step', (id: string) => `EXIT ${Number(id) + 1} 0\n`],
    ['an unknown frame', () => 'HELLO 1 0\n'],
    ['a non-numeric exit code', (id: string) => `EXIT ${id} -1\n`],
    ['a line longer than any frame', () => 'O 1 '.padEnd(20_000, 'A')],
  ] as const) {
    it(`ends the session on ${what}`, async () => {
      const { client, close } = await session((req, guest) => guest.write(reply(req.split(' ')[1]!)));
      try {
        await assert.rejects(client.run('true', 5), AgentProtocolError);
        await assert.rejects(client.run('true', 5), AgentProtocolError, 'a failed session must not accept more steps');
      } finally {
        await close();
      }
    });
  }

  it('rejects the running step when the guest hangs up', async () => {
    const { client, close } = await session((_req, guest) => guest.destroy());
    try {
      await assert.rejects(client.run('true', 5), /closed/);
    } finally {
      await close();
    }
  });

  it('gives up on a guest that does not report a step by its wall time plus the grace', async () => {
    const { client, close } = await session(() => undefined, 200);
    try {
      await assert.rejects(client.run('sleep 100', 1), /did not report step 1 within 1 s \+ 200 ms/);
      await assert.rejects(client.run('true', 1), AgentProtocolError);
    } finally {
      await close();
    }
  });

  it('refuses a wall time that is not a whole number of seconds', async () => {
    const { client, close } = await session(() => undefined);
    try {
      assert.throws(() => client.run('true', 0.5), RangeError);
      assert.throws(() => client.run('true', 0), RangeError);
    } finally {
      await close();
    }
  });
});
