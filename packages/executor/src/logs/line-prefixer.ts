import { isHighSurrogate, safeCutIndex } from './log-text.js';

/** The longest line kept whole, in characters (UTF-16 code units); a longer one is split. */
export const MAX_LINE_CHARS = 1024 * 1024;

/** Starts every piece of an over-long line after the first, right after the stream prefix. */
export const LINE_CONTINUED_MARKER = '[line continued] ';

/**
 * Complete lines are prefixed in runs of about this many characters: a pipe read (64 KiB) of short
 * lines, prefixed, would otherwise be one string large enough for V8's large-object space.
 */
const PREFIX_RUN_CHARS = 32 * 1024;

/**
 * Splits text into lines and prefixes each with `stdout: ` / `stderr: `. A partial line waits for its
 * newline (or the end of the stream), like Sourcegraph's line scanner.
 *
 * The partial line is kept as a list of pieces, so output without newlines costs O(n) in total, and
 * it never grows past `maxLineChars`: a longer line is emitted in pieces of that size, each following
 * piece on its own line as `stdout: [line continued] …`. Memory stays bounded and the output keeps
 * flowing to the coordinator even when a step never prints a newline. `pushPieces` gives the output
 * as a list of strings, so such a line is never joined into one large string (which would outlive
 * young-generation collections and pile up as garbage under a flood).
 */
export class LinePrefixer {
  #pieces: string[] = [];
  #partialLength = 0;
  /** The next text emitted continues a line that was split. */
  #continued = false;

  constructor(
    private readonly prefix: string,
    private readonly maxLineChars = MAX_LINE_CHARS,
    /** Complete lines are prefixed in runs of about this many characters, each its own string. */
    private readonly runChars = PREFIX_RUN_CHARS,
  ) {}

  push(text: string): string {
    return this.pushPieces(text).join('');
  }

  end(): string {
    return this.endPieces().join('');
  }

  /** push, as strings whose concatenation is the output. */
  pushPieces(text: string): string[] {
    if (text === '') return [];
    const lastNewline = text.lastIndexOf('\n');
    if (lastNewline === -1) {
      this.#pieces.push(text);
      this.#partialLength += text.length;
      return this.#partialLength > this.maxLineChars ? this.#emitFullPieces() : [];
    }
    const complete = this.#takePartial() + text.slice(0, lastNewline);
    const rest = text.slice(lastNewline + 1);
    if (rest !== '') {
      this.#pieces.push(rest);
      this.#partialLength = rest.length;
    }
    const out = this.#prefixRuns(complete);
    return this.#partialLength > this.maxLineChars ? [...out, ...this.#emitFullPieces()] : out;
  }

  /** end, as strings whose concatenation is the output. */
  endPieces(): string[] {
    const rest = this.#takePartial();
    const out = rest === '' ? [] : [this.#prefixLines(rest)];
    this.#continued = false;
    return out;
  }

  #takePartial(): string {
    const partial = this.#pieces.length === 1 ? this.#pieces[0]! : this.#pieces.join('');
    this.#pieces = [];
    this.#partialLength = 0;
    return partial;
  }

  /** Emits the partial line in lines of full size while it is longer than that; keeps the remainder. */
  #emitFullPieces(): string[] {
    const out: string[] = [];
    while (this.#partialLength > this.maxLineChars) {
      out.push(this.#continued ? `${this.prefix}${LINE_CONTINUED_MARKER}` : this.prefix);
      let need = this.maxLineChars;
      for (;;) {
        const piece = this.#pieces[0]!;
        const splitsPair = isHighSurrogate(piece.charCodeAt(need - 1));
        if (piece.length < need || (piece.length === need && !splitsPair)) {
          out.push(piece);
          this.#pieces.shift();
          this.#partialLength -= piece.length;
          need -= piece.length;
          if (need === 0) break;
          continue;
        }
        // The line ends inside this piece, before a high surrogate rather than between it and its pair.
        const cut = splitsPair ? need - 1 : need;
        if (cut > 0) out.push(piece.slice(0, cut));
        this.#pieces[0] = piece.slice(cut);
        this.#partialLength -= cut;
        break;
      }
      out.push('\n');
      this.#continued = true;
    }
    return out;
  }

  /** #prefixLines in runs of whole lines, so that no result is a large string. */
  #prefixRuns(text: string): string[] {
    if (text.length <= this.runChars) return [this.#prefixLines(text)];
    const out: string[] = [];
    for (let pos = 0; pos <= text.length; ) {
      let newline = text.lastIndexOf('\n', pos + this.runChars);
      if (newline < pos) newline = text.indexOf('\n', pos + this.runChars);
      const end = newline === -1 ? text.length : newline;
      out.push(this.#prefixLines(text.slice(pos, end)));
      pos = end + 1;
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
}
