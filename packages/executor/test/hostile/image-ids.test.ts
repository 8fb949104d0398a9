import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveUser } from '../../src/image/image-config.js';
import { ID_RANGE, ID_SHIFT } from '../../src/image/ids.js';
import { applyLayer } from '../../src/image/unpack.js';
import { capture } from '../../src/process/run.js';
import { tar } from './image-fixtures.js';

describe('image user and file ids', () => {
  let dir: string;
  let rootfs: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sandfleet-hostile-ids-'));
    rootfs = path.join(dir, 'rootfs');
    await fs.mkdir(path.join(rootfs, 'etc'), { recursive: true });
    await fs.writeFile(path.join(rootfs, 'etc/passwd'), [
      'root:x:0:0:root:/root:/bin/sh',
      'app:x:1000:1000::/home/app:/bin/sh',
      'minusone:x:4294967295:1000::/:/bin/sh',
      'badgid:x:1001:4294967295::/:/bin/sh',
      'empty:x::::/:/bin/sh',
      'big:x:65536:65536::/:/bin/sh',
    ].join('\n') + '\n');
    await fs.writeFile(path.join(rootfs, 'etc/group'), 'root:x:0:\nstaff:x:50:\nwide:x:4294967295:\n');
  });
  after(async () => fs.rm(dir, { recursive: true, force: true }));

  it('refuses image users and groups outside [0, 65536)', () => {
    for (const user of ['4294967295', '65536', '0:4294967295', '1000:65536', 'minusone', 'badgid', 'empty', 'big', 'app:wide', '99999999999']) {
      assert.throws(() => resolveUser(rootfs, user), /is not an id in \[0, 65536\)/, user);
    }
  });

  it('still resolves every id inside the range', () => {
    assert.deepEqual(resolveUser(rootfs, 'app'), { uid: 1000, gid: 1000, home: '/home/app' });
    assert.deepEqual(resolveUser(rootfs, '65535:staff'), { uid: 65535, gid: 50, home: '/' });
    assert.deepEqual(resolveUser(rootfs, ''), { uid: 0, gid: 0, home: '/root' });
  });

  it('reads /etc/passwd inside the rootfs: host links, loops and FIFOs never reach or hang the executor', async () => {
    const hostFile = path.join(dir, 'host-passwd');
    await fs.writeFile(hostFile, 'intruder:x:4242:4242::/:/bin/sh\n');
    const image = async (name: string, make: (etc: string) => Promise<void>) => {
      const root = path.join(dir, name);
      await fs.mkdir(path.join(root, 'etc'), { recursive: true });
      await make(path.join(root, 'etc'));
      return root;
    };
    const absolute = await image('abs', (etc) => fs.symlink(hostFile, path.join(etc, 'passwd')));
    const relative = await image('rel', (etc) => fs.symlink(`../../../../../../../../..${hostFile}`, path.join(etc, 'passwd')));
    for (const root of [absolute, relative]) assert.throws(() => resolveUser(root, 'intruder'), /image user "intruder" is not in the image's \/etc\/passwd/, root);
    const loop = await image('loop', async (etc) => {
      await fs.symlink('group', path.join(etc, 'passwd'));
      await fs.symlink('/etc/passwd', path.join(etc, 'group'));
    });
    assert.throws(() => resolveUser(loop, 'app'), /the image's \/etc\/passwd: too many levels of symbolic links/);
    const fifo = await image('fifo', async (etc) => {
      assert.equal((await capture(['mkfifo', path.join(etc, 'passwd')], { env: { PATH: '/usr/bin:/bin' } })).exitCode, 0);
    });
    assert.throws(() => resolveUser(fifo, 'app'), /the image's \/etc\/passwd is not a regular file/);
    // Links that stay in the image are followed as Docker follows them.
    const inside = await image('inside', async (etc) => {
      await fs.mkdir(path.join(etc, 'real'));
      await fs.writeFile(path.join(etc, 'real/passwd'), 'app:x:1234:1235::/home/app:/bin/sh\n');
      await fs.symlink('../../../../etc/real/passwd', path.join(etc, 'passwd'));
    });
    assert.deepEqual(resolveUser(inside, 'app'), { uid: 1234, gid: 1235, home: '/home/app' });
  });

  it('squashes out-of-range file owners in layers to nobody before shifting', async () => {
    const layer = path.join(dir, 'owners.tar');
    await fs.writeFile(layer, tar([
      { path: 'minus-one', data: 'x', pax: { uid: '4294967295', gid: '4294967295' } },
      { path: 'too-big', data: 'x', pax: { uid: '70000', gid: '65536' } },
      { path: 'negative', data: 'x', pax: { uid: '-1', gid: '-5' } },
      { path: 'junk', data: 'x', pax: { uid: 'zero', gid: '1e3' } },
      { path: 'fine', data: 'x', uid: 1000, gid: 1000 },
    ]));
    const out = path.join(dir, 'unpacked');
    await fs.mkdir(out);
    await applyLayer(out, layer, 'application/vnd.oci.image.layer.v1.tar', { idShift: ID_SHIFT, idRange: ID_RANGE });
    for (const name of ['minus-one', 'too-big', 'negative', 'junk']) {
      const st = await fs.stat(path.join(out, name));
      assert.deepEqual([st.uid, st.gid], [ID_SHIFT + 65534, ID_SHIFT + 65534], name);
    }
    const fine = await fs.stat(path.join(out, 'fine'));
    assert.deepEqual([fine.uid, fine.gid], [ID_SHIFT + 1000, ID_SHIFT + 1000]);
  });
});
