#!/usr/bin/env node
// Runs the TypeScript sources directly: tsx registers its loader, then the CLI is imported.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
const code = await main(process.argv);
// Exit explicitly: idle keep-alive sockets must not hold a drained executor open.
process.exit(code);
