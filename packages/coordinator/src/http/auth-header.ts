/**
 * An `Authorization` header split the way both APIs read it: exactly `<scheme> <token>`, one
 * space. `scheme` is lower-cased; `token` may be empty (`"Bearer "`), which callers refuse.
 */
export type AuthorizationHeader =
  | { kind: 'absent' }
  | { kind: 'malformed' }
  | { kind: 'credentials'; scheme: string; token: string };

export function parseAuthorization(header: string | undefined): AuthorizationHeader {
  if (header === undefined || header === '') return { kind: 'absent' };
  const parts = header.split(' ');
  if (parts.length !== 2) return { kind: 'malformed' };
  return { kind: 'credentials', scheme: parts[0]!.toLowerCase(), token: parts[1]! };
}
