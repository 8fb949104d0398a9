#!/usr/bin/env node
// Runs the TypeScript sources through tsx: no build step between a checkout and a running system.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
