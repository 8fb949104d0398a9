import http from 'node:http';

/** The status of a GET sent with the path exactly as written (fetch would normalize `..` and `%2e`). */
export function rawGetStatus(base: string, rawPath: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const url = new URL(base);
    http.get({ host: url.hostname, port: url.port, path: rawPath, headers }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', reject);
  });
}
