#!/usr/bin/env node
// The fake Firecracker that boots its guest under QEMU (see src/fake-firecracker-guest.ts).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/fake-firecracker.ts');
main(process.argv.slice(2), { guest: 'qemu' });
