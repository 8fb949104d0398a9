import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { makeTempDir, removeTempDir } from '@sandfleet/test-helpers';
import { OWNER_FILE, processIdentity, reapOrphanedVms } from '../../src/sandbox/vm/janitor.js';
import { createVmDir } from '../../src/sandbox/vm/qemu.js';
import { claimVmmIdentity, VMM_ID_BASE } from '../../src/sandbox/vm/vmm-identity.js';

/** The janitor without VMs: directories whose owner is gone, under two EXECUTOR_VM_PREFIX values. */
describe('VM janitor: prefixes and VMM ids', () => {
  it('reaps only orphans with its own prefix, leaves live owners alone, and frees their VMM ids', async () => {
    const runDir = makeTempDir('sandfleet-janitor-');
    try {
      const orphan = (prefix: string) => {
        const dir = createVmDir(runDir, prefix);
        fs.writeFileSync(path.join(dir, OWNER_FILE), '999999999 1\n'); // no such process
        return dir;
      };
      const mine = orphan('ci-a');
      const theirs = orphan('ci-b');
      const live = createVmDir(runDir, 'ci-a'); // owned by this process
      assert.equal(fs.readFileSync(path.join(live, OWNER_FILE), 'utf8').trim(), processIdentity(process.pid));
      const claimed = claimVmmIdentity(runDir, mine);
      assert.equal(claimed.uid, VMM_ID_BASE);
      assert.equal(claimVmmIdentity(runDir, live).uid, VMM_ID_BASE + 1, 'a claimed id is not handed out twice');

      assert.deepEqual(await reapOrphanedVms(runDir, 'ci-a'), [mine]);
      assert.equal(fs.existsSync(theirs), true, 'another prefix\'s VM is not this janitor\'s');
      assert.equal(fs.existsSync(live), true);
      assert.equal(claimVmmIdentity(runDir, theirs).uid, VMM_ID_BASE, 'the reaped VM\'s id is free again');
      assert.deepEqual(await reapOrphanedVms(runDir, 'ci-b'), [theirs]);
    } finally {
      removeTempDir(runDir);
    }
  });
});
