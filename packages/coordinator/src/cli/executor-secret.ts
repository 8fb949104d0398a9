import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { ExecutorSecretView } from '../user-api/executor-secret-routes.js';
import { ApiError, type ApiClient } from './api-client.js';

type ClientFactory = () => ApiClient;

/** `sandfleet executor-secret rotate|list`: the executors' shared secret. */
export function registerExecutorSecretCommands(program: Command, client: ClientFactory): void {
  const secret = program.command('executor-secret').description("rotate the executors' shared secret (EXECUTOR_FRONTEND_PASSWORD) and list the accepted ones");

  secret
    .command('rotate')
    .description('make a new shared secret and print it once; the previous ones stay accepted for the grace period, then are refused')
    .option('--grace <duration>', 'how long the previous secrets stay accepted (e.g. 90s, 30m, 1h; 0 = refuse at once; at most 168h)', '1h')
    .option('--out <file>', 'write the new secret to this file (created mode 0600, replacing it) instead of printing it')
    .action(async (opts: { grace: string; out?: string }) => {
      // The file is made before rotating: a secret that cannot be stored must not be the only current one.
      const out = opts.out !== undefined ? PrivateFile.create(opts.out) : undefined;
      let rotated: { secret: string; fingerprint: string; previousAcceptedUntil: string };
      try {
        rotated = await client().request('POST', '/api/executor-secrets/rotate', { grace: opts.grace });
      } catch (err) {
        out?.discard();
        throw err;
      }
      out?.commit(rotated.secret + '\n');
      process.stderr.write(
        `rotated the executor secret (fingerprint ${rotated.fingerprint}); the previous ones are accepted until ${rotated.previousAcceptedUntil}.\n` +
          (opts.out ? `the new secret is in ${opts.out}\n` : 'the new secret is shown only this once:\n'),
      );
      if (!opts.out) console.log(rotated.secret);
    });

  secret
    .command('list')
    .description('the stored and configured secrets: fingerprint, source, until when each is accepted (never a secret)')
    .action(async () => {
      const { executorSecrets } = await client().request<{ executorSecrets: ExecutorSecretView[] }>('GET', '/api/executor-secrets');
      console.log(['FINGERPRINT', 'SOURCE', 'CREATED', 'ACCEPTED UNTIL'].join('\t'));
      for (const s of executorSecrets) console.log([s.fingerprint, s.source, s.createdAt ?? '-', s.expiresAt ?? (s.accepted ? 'current' : 'retired')].join('\t'));
    });
}

/** A file readable by its owner only: written to a fresh 0600 temporary file, then renamed over the target. */
export class PrivateFile {
  private constructor(
    private readonly target: string,
    private readonly temp: string,
    private readonly fd: number,
  ) {}

  static create(file: string): PrivateFile {
    const target = path.resolve(file);
    const temp = path.join(path.dirname(target), `.${path.basename(target)}.${crypto.randomBytes(6).toString('hex')}.tmp`);
    try {
      return new PrivateFile(target, temp, fs.openSync(temp, 'wx', 0o600));
    } catch (err) {
      throw new ApiError(0, `cannot write --out ${file}: ${(err as Error).message}`);
    }
  }

  commit(text: string): void {
    fs.writeFileSync(this.fd, text);
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    fs.renameSync(this.temp, this.target);
  }

  discard(): void {
    fs.closeSync(this.fd);
    fs.rmSync(this.temp, { force: true });
  }
}
