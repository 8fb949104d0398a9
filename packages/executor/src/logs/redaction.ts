/**
 * Replaces secrets in text before it leaves the host (docs/protocol.md, "Workspace and clone"): every key of a
 * job's `redactedValues` becomes its value, and the frontend password becomes `SECRET_REMOVED`.
 */

/** What the frontend password is replaced with (docs/protocol.md, "Configuration grammar"). */
export const PASSWORD_REPLACEMENT = 'SECRET_REMOVED';

/** Secret → replacement. Empty secrets are ignored; at any position the longest secret wins. */
export type Redactions = ReadonlyMap<string, string>;

/**
 * Builds the redaction set of one job: the job's `redactedValues`, plus the executor's own secrets
 * (the frontend password and, defensively, the job token), which become `SECRET_REMOVED`.
 */
export function buildRedactions(
  frontendPassword: string,
  redactedValues: Readonly<Record<string, string>> | null | undefined,
  otherSecrets: readonly string[] = [],
): Redactions {
  const map = new Map<string, string>();
  for (const [secret, replacement] of Object.entries(redactedValues ?? {})) map.set(secret, replacement);
  for (const secret of [frontendPassword, ...otherSecrets]) map.set(secret, PASSWORD_REPLACEMENT);
  return map;
}

/** The compiled form of a Redactions map, shared by every stream of a job. */
export class Redactor {
  readonly #secrets: readonly string[];
  readonly #replacements: ReadonlyMap<string, string>;
  readonly #pattern: RegExp | undefined;
  /** Longest secret length minus one: the most a partial match can hold back. */
  readonly maxHoldback: number;

  constructor(redactions: Redactions) {
    // Longest first: JS alternation takes the first alternative that matches at the leftmost position.
    this.#secrets = [...redactions.keys()].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
    this.#replacements = redactions;
    this.#pattern = this.#secrets.length
      ? new RegExp(this.#secrets.map(escapeRegExp).join('|'), 'g')
      : undefined;
    this.maxHoldback = Math.max(0, (this.#secrets[0]?.length ?? 0) - 1);
  }

  /** Redacts a complete string, e.g. one argv element. */
  redactString(text: string): string {
    if (!this.#pattern) return text;
    return text.replace(this.#pattern, (secret) => this.#replacements.get(secret) ?? '');
  }

  /** A redactor for one output stream; secrets split across chunks are still caught. */
  stream(): StreamRedactor {
    return new StreamRedactor(this);
  }

  /**
   * Redacts `text` as far as it can be decided: returns the output and the tail that could still be
   * the start of a secret continued by the next chunk.
   */
  redactPartial(text: string): { output: string; held: string } {
    const pattern = this.#pattern;
    if (!pattern) return { output: text, held: '' };
    let output = '';
    let pos = 0;
    let pending = this.#pendingFrom(text, pos);
    for (;;) {
      pattern.lastIndex = pos;
      const match = pattern.exec(text);
      // A full match is final only before the first position where a longer secret may still be completing.
      if (match && match.index < pending) {
        output += text.slice(pos, match.index) + (this.#replacements.get(match[0]) ?? '');
        pos = match.index + match[0].length;
        if (pending < pos) pending = this.#pendingFrom(text, pos);
        continue;
      }
      output += text.slice(pos, pending);
      return { output, held: text.slice(pending) };
    }
  }

  /** The first index ≥ from where the rest of `text` is a proper prefix of some secret; text.length if none. */
  #pendingFrom(text: string, from: number): number {
    const start = Math.max(from, text.length - this.maxHoldback);
    for (let i = start; i < text.length; i++) {
      const rest = text.length - i;
      for (const secret of this.#secrets) {
        if (secret.length > rest && text.startsWith(secret.slice(0, rest), i)) return i;
      }
    }
    return text.length;
  }
}

/**
 * Streaming redaction for one output stream. `push` returns what is safe to emit now and holds back
 * the longest tail that might be the beginning of a secret; `end` releases (redacted) whatever is held.
 */
export class StreamRedactor {
  #held = '';

  constructor(private readonly redactor: Redactor) {}

  push(chunk: string): string {
    const { output, held } = this.redactor.redactPartial(this.#held + chunk);
    this.#held = held;
    return output;
  }

  end(): string {
    const rest = this.redactor.redactString(this.#held);
    this.#held = '';
    return rest;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
