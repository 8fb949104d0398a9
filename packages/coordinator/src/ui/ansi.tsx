/** @jsxImportSource hono/jsx */
import type { Child } from 'hono/jsx';

/**
 * ANSI SGR colour codes (ESC [ … m) → spans with classes (`ansi-fg-1`, `ansi-bold`, …), so a
 * coloured build log reads as it did in the terminal. Text goes through JSX, which escapes it;
 * other escape sequences (cursor moves, OSC titles) are dropped.
 */

interface Style {
  fg?: string;
  bg?: string;
  bold?: boolean;
  dim?: boolean;
  italic?: boolean;
  underline?: boolean;
}

// CSI sequences (ESC [ params final) or a two-character ESC sequence; OSC (ESC ] … BEL/ST).
const ESCAPE = /\x1b\[([0-9;:?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?/g;

export function ansiToJsx(text: string): Child[] {
  const parts: Child[] = [];
  let style: Style = {};
  let last = 0;
  for (const match of text.matchAll(ESCAPE)) {
    if (match.index > last) parts.push(styled(text.slice(last, match.index), style));
    last = match.index + match[0].length;
    if (match[2] === 'm') style = applySgr(style, match[1] ?? '');
  }
  if (last < text.length) parts.push(styled(text.slice(last), style));
  return parts;
}

function styled(text: string, style: Style): Child {
  const classes = styleClasses(style);
  return classes === '' ? text : <span class={classes}>{text}</span>;
}

function styleClasses(style: Style): string {
  const classes: string[] = [];
  if (style.fg) classes.push(`ansi-fg-${style.fg}`);
  if (style.bg) classes.push(`ansi-bg-${style.bg}`);
  if (style.bold) classes.push('ansi-bold');
  if (style.dim) classes.push('ansi-dim');
  if (style.italic) classes.push('ansi-italic');
  if (style.underline) classes.push('ansi-underline');
  return classes.join(' ');
}

/** One SGR parameter list applied to the current style. 256-colour and RGB colours are skipped (not their arguments). */
export function applySgr(current: Style, params: string): Style {
  const codes = params === '' ? [0] : params.split(/[;:]/).map((p) => Number(p) || 0);
  let style = { ...current };
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i]!;
    if (code === 0) style = {};
    else if (code === 1) style.bold = true;
    else if (code === 2) style.dim = true;
    else if (code === 3) style.italic = true;
    else if (code === 4) style.underline = true;
    else if (code === 22) style.bold = style.dim = false;
    else if (code === 23) style.italic = false;
    else if (code === 24) style.underline = false;
    else if (code >= 30 && code <= 37) style.fg = String(code - 30);
    else if (code >= 90 && code <= 97) style.fg = String(code - 90 + 8);
    else if (code === 39) delete style.fg;
    else if (code >= 40 && code <= 47) style.bg = String(code - 40);
    else if (code >= 100 && code <= 107) style.bg = String(code - 100 + 8);
    else if (code === 49) delete style.bg;
    else if (code === 38 || code === 48) i += codes[i + 1] === 5 ? 2 : codes[i + 1] === 2 ? 4 : 1;
  }
  return style;
}
