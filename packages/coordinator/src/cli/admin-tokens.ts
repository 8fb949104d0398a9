import fs from 'node:fs';
import type { Command } from 'commander';
import type { AdminTokenView } from '../user-api/admin-token-routes.js';
import { ApiError, type ApiClient } from './api-client.js';

type ClientFactory = () => ApiClient;

/** `sandfleet admin-tokens list|create|revoke`. Tokens are shown only once, by create. */
export function registerAdminTokenCommands(program: Command, client: ClientFactory): void {
  const tokens = program.command('admin-tokens').description('list, create and revoke admin API tokens');

  tokens
    .command('list')
    .description('every admin token: id, name, source, created, last used (never the token)')
    .action(async () => {
      const { adminTokens } = await client().request<{ adminTokens: AdminTokenView[] }>('GET', '/api/admin-tokens');
      console.log(['ID', 'NAME', 'SOURCE', 'CREATED', 'LAST USED'].join('\t'));
      for (const t of adminTokens) console.log([t.id, t.description || '-', t.source, t.createdAt, t.lastUsedAt ?? 'never'].join('\t'));
    });

  tokens
    .command('create')
    .description('create an admin token and print it once (store it now: it cannot be shown again)')
    .option('-n, --name <name>', 'what the token is for', '')
    .action(async (opts: { name: string }) => {
      const { token, adminToken } = await client().request<{ token: string; adminToken: AdminTokenView }>('POST', '/api/admin-tokens', { description: opts.name });
      process.stderr.write(`created admin token ${adminToken.id}; it is shown only this once:\n`);
      console.log(token);
    });

  tokens
    .command('revoke')
    .description('revoke an admin token by id (see list)')
    .argument('<id>', 'token id')
    .action(async (id: string) => {
      await client().request('DELETE', `/api/admin-tokens/${encodeURIComponent(id)}`);
      console.log(`revoked admin token ${id}`);
    });
}

/**
 * The admin token of client commands, from a file (first line; it should be readable by its owner
 * only) or else SANDFLEET_ADMIN_TOKEN. Never from argv, which every user of the host can read.
 */
export function readAdminTokenFile(file: string): string {
  let stat: fs.Stats;
  let text: string;
  try {
    stat = fs.statSync(file);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ApiError(0, `cannot read --token-file ${file}: ${(err as Error).message}`);
  }
  if ((stat.mode & 0o077) !== 0) {
    process.stderr.write(`sandfleet: warning: ${file} is readable by others (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it\n`);
  }
  const token = text.split('\n')[0]!.trim();
  if (token === '') throw new ApiError(0, `--token-file ${file} is empty`);
  return token;
}

/** `--token` put the admin token in argv; it is refused with where to put the token instead. */
export const TOKEN_FLAG_REMOVED =
  '--token is no longer supported: it exposes the admin token to every user of this host (ps, /proc). Set SANDFLEET_ADMIN_TOKEN or pass --token-file <file> (mode 0600)';
