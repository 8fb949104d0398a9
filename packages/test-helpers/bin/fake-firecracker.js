#!/usr/bin/env node
// A fake Firecracker for tests (see src/fake-firecracker.ts): tsx loads the TypeScript source.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/fake-firecracker.ts');
main(process.argv.slice(2));
