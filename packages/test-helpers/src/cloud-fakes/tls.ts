import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeTempDir, removeTempDir } from '../temp-dirs.js';

export interface TestCertificate {
  /** PEM certificate (self-signed, so also the CA to trust). */
  cert: Buffer;
  key: Buffer;
  /** The certificate written to a file, for configuration that takes a path. */
  certFile: string;
  remove(): void;
}

/** A throw-away self-signed certificate for 127.0.0.1 and localhost. */
export function makeTestCertificate(): TestCertificate {
  const dir = makeTempDir('sandfleet-cert-');
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile],
    { stdio: 'pipe' },
  );
  return { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile), certFile, remove: () => removeTempDir(dir) };
}
