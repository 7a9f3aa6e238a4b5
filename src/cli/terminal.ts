/**
 * Terminal-safe text: strings that came from a cluster (a result's error or
 * worker, a log line naming them) or from files are printed in text mode
 * with every control character escaped, so that they cannot clear the
 * screen, set the window title, move the cursor or start a fake line of
 * odeness output. `--json` and `--events` print exact values (JSON escapes
 * control characters itself).
 *
 * Escaped: C0 controls (newline and tab included: one printed line stays one
 * line), DEL, C1 controls (0x80–0x9f, e.g. the 8-bit CSI), and the Unicode
 * line/paragraph separators and bidirectional overrides (text that reads
 * differently from what it is).
 */

// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const hex = (c: string, width: number) => c.codePointAt(0)!.toString(16).padStart(width, '0');

/** `s` with each unsafe character written as \xNN or \uNNNN (a backslash stays as is). */
export function terminalSafe(s: string): string {
  return s.replace(UNSAFE, (c) => (c.codePointAt(0)! <= 0xff ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`));
}

/** Each line of `text` made safe, the line breaks kept (for multi-line text odeness itself composed). */
export function terminalSafeLines(text: string): string {
  return text.split('\n').map(terminalSafe).join('\n');
}
