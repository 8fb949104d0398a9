import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { applyLayer } from '../../src/image/unpack.js';
import { tar, type TarSpec } from './image-fixtures.js';

const TAR = 'application/vnd.oci.image.layer.v1.tar';

/**
 * Layers that try to reach the host through symlinks, hard links and whiteouts. The "host" is a
 * directory of this test (`outside/`) standing in for /etc and friends; it must come out of every
 * case byte for byte, mode for mode and link count for link count as it went in.
 */
describe('tar tricks in layers', () => {
  let dir: string;
  let outside: string;
  let n = 0;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-hostile-tar-'));
    outside = path.join(dir, 'outside');
    await fs.mkdir(path.join(outside, 'etc'), { recursive: true });
    await fs.writeFile(path.join(outside, 'etc/passwd'), 'root:x:0:0:host:/root:/bin/sh\n');
    await fs.writeFile(path.join(outside, 'secret'), 'host secret\n');
    await fs.chmod(outside, 0o750);
  });
  after(async () => fs.rm(dir, { recursive: true, force: true }));

  async function snapshot(): Promise<string[]> {
    const out: string[] = [];
    const walk = async (p: string) => {
      const st = await fs.lstat(p);
      out.push(`${path.relative(dir, p)} ${st.mode.toString(8)} ${st.nlink} ${st.uid}:${st.gid} ${st.isFile() ? await fs.readFile(p, 'utf8') : ''}`);
      if (st.isDirectory()) for (const c of (await fs.readdir(p)).sort()) await walk(path.join(p, c));
    };
    await walk(outside);
    return out;
  }

  /** Applies the layers in order to a fresh rootfs; returns it and the error of the layer that failed. */
  async function unpack(...layers: TarSpec[][]): Promise<{ rootfs: string; error?: Error }> {
    const rootfs = path.join(dir, `rootfs-${n++}`);
    await fs.mkdir(rootfs);
    for (const [i, entries] of layers.entries()) {
      const file = path.join(dir, `layer-${n}-${i}.tar`);
      await fs.writeFile(file, tar(entries));
      try {
        await applyLayer(rootfs, file, TAR, { idShift: 0, idRange: 65536 });
      } catch (err) {
        return { rootfs, error: err as Error };
      }
    }
    return { rootfs };
  }

  it('writes through a planted `etc -> /host/etc` symlink only inside the rootfs', async () => {
    const before = await snapshot();
    const { rootfs, error } = await unpack(
      [{ path: 'etc', type: '2', linkPath: path.join(outside, 'etc') }, { path: 'up', type: '2', linkPath: `../../../../../../../..${outside}` }],
      [{ path: 'etc/passwd', data: 'root:x:0:0:image:/root:/bin/sh\n' }, { path: 'up/secret', data: 'overwritten\n' }, { path: 'etc/new/deep', data: 'x' }],
    );
    assert.equal(error, undefined);
    assert.deepEqual(await snapshot(), before, 'the host side is untouched');
    assert.equal(await fs.readFile(path.join(rootfs, outside, 'etc/passwd'), 'utf8'), 'root:x:0:0:image:/root:/bin/sh\n');
    assert.equal(await fs.readFile(path.join(rootfs, outside, 'secret'), 'utf8'), 'overwritten\n');
  });

  it('replaces a planted symlink instead of writing, chmodding or chowning through it', async () => {
    const before = await snapshot();
    const { rootfs, error } = await unpack(
      [{ path: 'f', type: '2', linkPath: path.join(outside, 'secret') }, { path: 'd', type: '2', linkPath: outside }],
      [{ path: 'f', data: 'mine\n', mode: 0o777, uid: 1234 }, { path: 'd', type: '5', mode: 0o777, uid: 1234 }],
    );
    assert.equal(error, undefined);
    assert.deepEqual(await snapshot(), before);
    assert.equal(await fs.readFile(path.join(rootfs, 'f'), 'utf8'), 'mine\n');
    assert.ok((await fs.lstat(path.join(rootfs, 'd'))).isDirectory());
  });

  it('refuses hard links that point outside the rootfs, directly or through symlinks', async () => {
    const before = await snapshot();
    const climbing = await unpack([{ path: 'h', type: '1', linkPath: '../outside/secret' }]);
    assert.match(String(climbing.error), /hard link escapes the rootfs/);
    const absolute = await unpack([{ path: 'h', type: '1', linkPath: path.join(outside, 'secret') }]);
    assert.match(String(absolute.error), /target missing/);
    const viaDir = await unpack([{ path: 'd', type: '2', linkPath: outside }], [{ path: 'h', type: '1', linkPath: 'd/secret' }]);
    assert.match(String(viaDir.error), /target missing/);
    // A hard link to a symlink links the symlink itself, never the host file it names.
    const viaLink = await unpack([{ path: 's', type: '2', linkPath: path.join(outside, 'secret') }], [{ path: 'h', type: '1', linkPath: 's' }]);
    assert.equal(viaLink.error, undefined);
    assert.ok((await fs.lstat(path.join(viaLink.rootfs, 'h'))).isSymbolicLink());
    assert.deepEqual(await snapshot(), before, 'no host file gained a link');
  });

  it('never deletes outside the rootfs with whiteouts', async () => {
    const before = await snapshot();
    const climbing = await unpack([{ path: '../.wh.outside', data: '' }]);
    assert.match(String(climbing.error), /escapes the rootfs/);
    const nested = await unpack([{ path: 'a/../../.wh.secret', data: '' }]);
    assert.match(String(nested.error), /escapes the rootfs/);
    const viaDir = await unpack([{ path: 'd', type: '2', linkPath: outside }, { path: 'e', type: '2', linkPath: path.join(outside, 'etc') }],
      [{ path: 'd/.wh.secret', data: '' }, { path: 'e/.wh..wh..opq', data: '' }, { path: 'd/.wh.etc', data: '' }]);
    assert.equal(viaDir.error, undefined);
    const dotdot = await unpack([{ path: 'x/.wh...', data: '' }]);
    assert.match(String(dotdot.error), /invalid whiteout|escapes/);
    assert.deepEqual(await snapshot(), before, 'the host side is untouched');
  });
});
