import { safeCutIndex } from './log-text.js';

/** The longest line kept whole, in characters (UTF-16 code units); a longer one is split. */
export const MAX_LINE_CHARS = 1024 * 1024;

/** Starts every piece of an over-long line after the first, right after the stream prefix. */
export const LINE_CONTINUED_MARKER = '[line continued] ';

/**
 * Splits text into lines and prefixes each with `stdout: ` / `stderr: `. A partial line waits for its
 * newline (or the end of the stream), like Sourcegraph's line scanner.
 *
 * The partial line is kept as a list of pieces, so output without newlines costs O(n) in total, and
 * it never grows past `maxLineChars`: a longer line is emitted in pieces of that size, each following
 * piece on its own line as `stdout: [line continued] …`. Memory stays bounded and the output keeps
 * flowing to the coordinator even when a step never prints a newline.
 */
export class LinePrefixer {
  #pieces: string[] = [];
  #partialLength = 0;
  /** The next text emitted continues a line that was split. */
  #continued = false;

  constructor(
    private readonly prefix: string,
    private readonly maxLineChars = MAX_LINE_CHARS,
  ) {}

  push(text: string): string {
    if (text === '') return '';
    const lastNewline = text.lastIndexOf('\n');
    if (lastNewline === -1) {
      this.#pieces.push(text);
      this.#partialLength += text.length;
      return this.#partialLength > this.maxLineChars ? this.#emitFullPieces() : '';
    }
    const complete = this.#takePartial() + text.slice(0, lastNewline);
    const rest = text.slice(lastNewline + 1);
    if (rest !== '') {
      this.#pieces.push(rest);
      this.#partialLength = rest.length;
    }
    const out = this.#prefixLines(complete);
    return this.#partialLength > this.maxLineChars ? out + this.#emitFullPieces() : out;
  }

  end(): string {
    const rest = this.#takePartial();
    const out = rest === '' ? '' : this.#prefixLines(rest);
    this.#continued = false;
    return out;
  }

  #takePartial(): string {
    const partial = this.#pieces.length === 1 ? this.#pieces[0]! : this.#pieces.join('');
    this.#pieces = [];
    this.#partialLength = 0;
    return partial;
  }

  /** Emits the partial line in full-size pieces while it is longer than that; keeps the remainder. */
  #emitFullPieces(): string {
    let partial = this.#takePartial();
    let out = '';
    while (partial.length > this.maxLineChars) {
      const cut = safeCutIndex(partial, this.maxLineChars);
      out += this.#line(partial.slice(0, cut));
      this.#continued = true;
      partial = partial.slice(cut);
    }
    if (partial !== '') {
      // A slice would keep the whole joined line alive while it waits; a copy keeps only itself.
      this.#pieces.push(copyString(partial));
      this.#partialLength = partial.length;
    }
    return out;
  }

  /** Prefixes complete lines (`text` without its final newline), splitting any that are too long. */
  #prefixLines(text: string): string {
    const first = this.#continued ? `${this.prefix}${LINE_CONTINUED_MARKER}` : this.prefix;
    this.#continued = false;
    // No line can be too long in text this short: one native replace does it all.
    if (text.length <= this.maxLineChars) return `${first}${text.replaceAll('\n', `\n${this.prefix}`)}\n`;
    const out: string[] = [];
    let lineStart = first;
    for (const line of text.split('\n')) {
      let rest = line;
      while (rest.length > this.maxLineChars) {
        const cut = safeCutIndex(rest, this.maxLineChars);
        out.push(`${lineStart}${rest.slice(0, cut)}\n`);
        lineStart = `${this.prefix}${LINE_CONTINUED_MARKER}`;
        rest = rest.slice(cut);
      }
      out.push(`${lineStart}${rest}\n`);
      lineStart = this.prefix;
    }
    return out.join('');
  }

  #line(text: string): string {
    return this.#continued ? `${this.prefix}${LINE_CONTINUED_MARKER}${text}\n` : `${this.prefix}${text}\n`;
  }
}

/** A flat copy of `text` that shares no memory with the string it was sliced from (UTF-16 round trip, lossless). */
function copyString(text: string): string {
  return Buffer.from(text, 'utf16le').toString('utf16le');
}
