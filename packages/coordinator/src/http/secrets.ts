import crypto from 'node:crypto';

export function randomToken(bytes = 24): string {
  return crypto.randomBytes(bytes).toString('hex');
}
