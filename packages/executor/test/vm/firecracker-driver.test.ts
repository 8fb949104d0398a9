import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import { isAlive, makeTempDir } from '@sandfleet/test-helpers';
import { FAKE_FIRECRACKER_BIN, FAKE_JAILER_BIN } from '@sandfleet/test-helpers/fake-firecracker';
import { FirecrackerApiClient, FirecrackerApiError, FirecrackerRequestInvalidError } from '../../src/sandbox/vm/firecracker/api-client.js';
import { apiSchema } from '../../src/sandbox/vm/firecracker/api-schema.js';
import { FirecrackerVm, FirecrackerVmError, WORKSPACE_DRIVE_ID, type FirecrackerVmOptions } from '../../src/sandbox/vm/firecracker/vm.js';
import { connectVsock, VsockConnectError } from '../../src/sandbox/vm/firecracker/vsock.js';
import { reapOrphanedVms } from '../../src/sandbox/vm/janitor.js';

const work = makeTempDir('sandfleet-fc-', { untilFileEnds: true });
const kernel = path.join(work, 'vmlinux');
const initrd = path.join(work, 'initrd');
const rootImage = path.join(work, 'root.img');
for (const f of [kernel, initrd, rootImage]) fs.writeFileSync(f, 'not really a kernel');
const runDir = path.join(work, 'run');

function options(over: Partial<FirecrackerVmOptions> = {}): FirecrackerVmOptions {
  return {
    firecracker: FAKE_FIRECRACKER_BIN, runDir, kernelPath: kernel, initrdPath: initrd, bootArgs: 'console=ttyS0 panic=-1',
    vcpus: 2, memoryMiB: 512, drives: [{ id: 'image', pathOnHost: rootImage, readOnly: true }], workspaceBytes: 64 << 20, ...over,
  };
}

interface Logged { method: string; path: string; body: string }
function requests(vm: FirecrackerVm): Logged[] {
  return fs.readFileSync(path.join(vm.chroot ?? vm.dir, 'api.socket.requests.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Logged);
}

/** A raw request to the fake, bypassing the driver's own validation: what a buggy client could send. */
function raw(socketPath: string, method: string, urlPath: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path: urlPath, headers: body ? { 'Content-Type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => { text += c; }).on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('Firecracker API schema (the repository copy)', () => {
  it('accepts the driver\'s requests and rejects ones Firecracker would', () => {
    const s = apiSchema();
    assert.deepEqual(s.validate('PUT', '/machine-config', { vcpu_count: 2, mem_size_mib: 512 }).problems, []);
    assert.match(s.validate('PUT', '/machine-config', { vcpu_count: 0, mem_size_mib: 512 }).problems.join(), /vcpu_count must be >= 1/);
    assert.match(s.validate('PUT', '/drives/root', { drive_id: 'root' }).problems.join(), /is_root_device/);
    assert.match(s.validate('PUT', '/actions', { action_type: 'Reboot' }).problems.join(), /allowed values/);
    assert.match(s.validate('PUT', '/vsock', { guest_cid: 2, uds_path: '/x' }).problems.join(), /guest_cid must be >= 3/);
    assert.match(s.validate('DELETE', '/actions', undefined).problems.join(), /Invalid request method/);
    // Firecracker refuses unknown fields; the schema copy is read that way.
    assert.match(s.validate('PUT', '/machine-config', { vcpu_count: 1, mem_size_mib: 128, vcpus: 2 }).problems.join(), /must NOT have additional properties/);
    assert.deepEqual(s.validate('PUT', '/mmds', { any: { nested: 'data' } }).problems, []);
    assert.equal(s.validate('PUT', '/drives/ws', { drive_id: 'ws', is_root_device: false }).operation?.pathParams.drive_id, 'ws');
  });
});

describe('FirecrackerVm against the fake Firecracker', () => {
  it('configures, boots, stops and cleans up: socket, disks and process gone', async () => {
    const vm = await FirecrackerVm.launch(options());
    const pid = vm.pid!;
    assert.ok(isAlive(pid));
    assert.ok(fs.existsSync(vm.api.socketPath));
    const info = await vm.api.get<{ state: string; id: string }>('/');
    assert.equal(info.state, 'Running');
    assert.equal(info.id, vm.id);
    const sent = requests(vm).filter((r) => r.method === 'PUT');
    assert.deepEqual(sent.map((r) => r.path), ['/machine-config', '/boot-source', '/drives/image', `/drives/${WORKSPACE_DRIVE_ID}`, '/vsock', '/actions']);
    assert.deepEqual(JSON.parse(sent[0]!.body), { vcpu_count: 2, mem_size_mib: 512, smt: false });
    assert.equal(JSON.parse(sent[1]!.body).kernel_image_path, kernel);
    assert.equal(JSON.parse(sent[2]!.body).is_read_only, true);
    const ws = JSON.parse(sent[3]!.body) as { path_on_host: string; is_read_only: boolean };
    assert.equal(ws.is_read_only, false);
    assert.equal(fs.statSync(ws.path_on_host).size, 64 << 20);
    // A pre-boot resource after the start is refused by the VMM, and the driver reports its message.
    await assert.rejects(vm.api.put('/machine-config', { vcpu_count: 1, mem_size_mib: 128 }), (err: unknown) =>
      err instanceof FirecrackerApiError && err.status === 400 && /not supported after starting/.test(err.faultMessage));
    // Nobody listens on the guest side of the fake's vsock: the handshake fails with a clear error.
    await assert.rejects(connectVsock(vm.vsockPath, 52, 2_000), VsockConnectError);
    await vm.stop();
    assert.equal(vm.running, false);
    assert.ok(!isAlive(pid));
    await vm.cleanup();
    assert.ok(!fs.existsSync(vm.dir));
    assert.deepEqual(fs.readdirSync(runDir), []);
  });

  it('under the jailer: chroot layout, files staged inside it, chroot-relative paths, all removed', { skip: process.getuid?.() !== 0 && 'the jailer path chowns files: needs root' }, async () => {
    const vm = await FirecrackerVm.launch(options({ jailer: { binary: FAKE_JAILER_BIN, uid: 65534, gid: 65534 } }));
    const chroot = path.join(vm.dir, 'jail', path.basename(FAKE_FIRECRACKER_BIN), vm.id, 'root');
    assert.equal(vm.chroot, chroot);
    assert.equal(fs.realpathSync(vm.api.socketPath), path.join(chroot, 'api.socket'));
    assert.equal((await vm.api.get<{ state: string }>('/')).state, 'Running');
    const sent = requests(vm).filter((r) => r.method === 'PUT').map((r) => ({ path: r.path, body: JSON.parse(r.body) as Record<string, unknown> }));
    assert.deepEqual(sent[1]!.body, { kernel_image_path: '/vmlinux', initrd_path: '/initrd', boot_args: 'console=ttyS0 panic=-1' });
    assert.equal(sent[2]!.body.path_on_host, '/drive-image');
    assert.equal(sent[3]!.body.path_on_host, `/${WORKSPACE_DRIVE_ID}.ext4`);
    assert.equal(sent[4]!.body.uds_path, '/vsock.sock');
    assert.equal(fs.statSync(path.join(chroot, `${WORKSPACE_DRIVE_ID}.ext4`)).uid, 65534);
    assert.equal(fs.realpathSync(vm.vsockPath), path.join(chroot, 'vsock.sock'));
    // Staging never changes the owner of the operator's files.
    assert.equal(fs.statSync(kernel).uid, process.getuid!());
    await vm.stop();
    await vm.cleanup();
    assert.ok(!fs.existsSync(vm.dir));
  });

  it('kills a VMM that ignores Ctrl+Alt+Del once the grace period ends', async () => {
    const vm = await FirecrackerVm.launch(options({ workspaceBytes: 0, drives: [] }));
    // SIGSTOP: the process cannot answer or exit by itself, so only the kill can end it.
    process.kill(vm.pid!, 'SIGSTOP');
    await vm.stop(200);
    assert.equal(vm.running, false);
    await vm.cleanup();
    assert.ok(!fs.existsSync(vm.dir));
  });

  it('turns a fault_message into a typed error and removes what it created', async () => {
    await assert.rejects(FirecrackerVm.launch(options({ kernelPath: path.join(work, 'missing-vmlinux') })), (err: unknown) =>
      err instanceof FirecrackerVmError && /PUT \/boot-source \(HTTP 400\): Cannot open kernel image/.test(err.message));
    await assert.rejects(FirecrackerVm.launch(options({ tap: { hostDevName: 'sfnotap0' } })), /Open tap device failed/);
    await assert.rejects(FirecrackerVm.launch(options({ firecracker: path.join(work, 'no-firecracker') })), /cannot start .*ENOENT/);
    assert.deepEqual(fs.readdirSync(runDir), []);
  });

  for (const mode of ['unjailed', ...(process.getuid?.() === 0 ? ['jailed'] : [])]) it(`the janitor removes the VM of an executor that was killed: VMM, sockets and disk (${mode})`, async () => {
    const janitorRun = path.join(work, `janitor-run-${mode}`);
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'firecracker-launch.ts'), janitorRun, kernel, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((r) => child.once('exit', r));
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.setEncoding('utf8').on('data', (c: string) => { out += c; if (out.includes('\n')) resolve(out.trim()); });
      child.once('exit', (code) => reject(new Error(`launcher exited ${code}: ${out}`)));
    });
    const [, pid, dir] = line.split(' ');
    // The executor dies; its VMM lives on, as Firecracker would.
    child.kill('SIGKILL');
    await exited;
    assert.ok(isAlive(Number(pid)));
    assert.deepEqual(await reapOrphanedVms(janitorRun), [dir]);
    assert.ok(!isAlive(Number(pid)));
    assert.ok(!fs.existsSync(dir!));
  });

  it('never sends a request the schema rejects', async () => {
    const client = new FirecrackerApiClient(path.join(work, 'no-such.socket'));
    await assert.rejects(client.put('/machine-config', { vcpu_count: 64, mem_size_mib: 512 }), (err: unknown) =>
      err instanceof FirecrackerRequestInvalidError && /vcpu_count must be <= 32/.test(err.message));
    await assert.rejects(client.put('/machine-config', { vcpu_count: 1, mem_size_mib: 512 }), /no-such.socket/);
  });
});

describe('the fake Firecracker rejects what Firecracker rejects', () => {
  it('bad bodies, unknown routes, and requests out of order', async () => {
    const vm = await FirecrackerVm.launch(options({ workspaceBytes: 0, drives: [] }));
    const sock = vm.api.socketPath;
    try {
      const cases: [string, string, string | undefined, RegExp][] = [
        ['PUT', '/machine-config', '{"vcpu_count": "two", "mem_size_mib": 1}', /deserializing/],
        ['PUT', '/machine-config', '{not json', /deserializing/],
        ['PUT', '/drives/x', JSON.stringify({ drive_id: 'x', is_root_device: false, path_on_host: kernel, readonly: true }), /deserializing/],
        ['DELETE', '/vsock', undefined, /Invalid request method and\/or path/],
        ['GET', '/no-such-thing', undefined, /Invalid request method and\/or path/],
        ['PUT', '/boot-source', JSON.stringify({ kernel_image_path: kernel }), /not supported after starting/],
        ['PUT', '/actions', '{"action_type": "InstanceStart"}', /not supported after starting/],
      ];
      for (const [method, p, body, message] of cases) {
        const r = await raw(sock, method, p, body);
        assert.equal(r.status, 400, `${method} ${p}`);
        assert.match((JSON.parse(r.body) as { fault_message: string }).fault_message, message, `${method} ${p}`);
      }
    } finally {
      await vm.cleanup();
    }
  });

  it('InstanceStart without a boot source, post-boot operations before the start, mismatched ids', async () => {
    const dir = makeTempDir('sandfleet-fc-raw-', { untilFileEnds: true });
    const { spawn } = await import('node:child_process');
    const sock = path.join(dir, 'api.socket');
    const child = spawn(FAKE_FIRECRACKER_BIN, ['--api-sock', sock, '--id', 'raw-test'], { stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    try {
      for (let i = 0; i < 500 && !(await raw(sock, 'GET', '/').then(() => true, () => false)); i++) await new Promise((r) => setTimeout(r, 20));
      const fault = async (method: string, p: string, body?: string) => {
        const r = await raw(sock, method, p, body);
        assert.equal(r.status, 400, `${method} ${p}: ${r.body}`);
        return (JSON.parse(r.body) as { fault_message: string }).fault_message;
      };
      assert.match(await fault('PUT', '/actions', '{"action_type": "InstanceStart"}'), /without kernel configuration/);
      assert.match(await fault('PUT', '/actions', '{"action_type": "SendCtrlAltDel"}'), /before starting/);
      assert.match(await fault('PATCH', '/drives/a', '{"drive_id": "a"}'), /before starting/);
      assert.match(await fault('PUT', '/drives/a', JSON.stringify({ drive_id: 'b', is_root_device: false, path_on_host: kernel })), /does not match/);
      assert.equal((await raw(sock, 'PUT', '/boot-source', JSON.stringify({ kernel_image_path: kernel }))).status, 204);
      assert.equal((await raw(sock, 'PUT', '/actions', '{"action_type": "InstanceStart"}')).status, 204);
    } finally {
      child.kill('SIGKILL');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
