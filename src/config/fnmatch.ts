// Shell-style globs with Python's `fnmatch.fnmatchcase` semantics (CPython 3.11, what Zed's Ceilometer
// matches polling.yaml meter patterns with; on POSIX `fnmatch.fnmatch` does no case folding):
// - `*` any run of characters, "." and "/" included; `?` exactly one character;
// - `[seq]` one character of seq, `[!seq]` one character not in seq; `a-z` inside is a range; a "]"
//   right after "[" or "[!" is a literal; "-" first or last is a literal; a range whose ends are
//   reversed (`z-a`) is dropped together with both its ends, and a set left empty matches nothing;
// - a "[" with no closing "]" is a literal "[";
// - everything else is literal (regex metacharacters included); the whole name must match.
// test/unit/config-fnmatch.test.ts checks this against Python's fnmatch.

const cache = new Map<string, RegExp>();

/** Every character as a \u{…} escape: nothing inside a character class can then mean anything special. */
function esc(ch: string): string {
  return `\\u{${ch.codePointAt(0)!.toString(16)}}`;
}

/**
 * The character class for the text between "[" and "]" (`body`, without a leading "!"). Ranges are found
 * as Python finds them: a "-" splits the set only when it is not the set's first character and at least
 * two characters after the previous splitting "-"; each split joins the last character before it and the
 * first after it into a range.
 */
function charClass(body: string[], negated: boolean): string {
  const pieces: string[][] = [];
  let start = 0;
  let from = 1;
  for (;;) {
    let dash = -1;
    for (let k = from; k < body.length; k++) {
      if (body[k] === '-') {
        dash = k;
        break;
      }
    }
    if (dash < 0) break;
    pieces.push(body.slice(start, dash));
    start = dash + 1;
    from = dash + 3;
  }
  const rest = body.slice(start);
  if (rest.length > 0) pieces.push(rest);
  else if (pieces.length > 0) pieces[pieces.length - 1]!.push('-'); // a trailing "-" is literal

  // reversed ranges disappear with both ends, right to left, as in CPython
  for (let k = pieces.length - 1; k > 0; k--) {
    const left = pieces[k - 1]!;
    const right = pieces[k]!;
    if (left[left.length - 1]!.codePointAt(0)! > right[0]!.codePointAt(0)!) {
      pieces[k - 1] = [...left.slice(0, -1), ...right.slice(1)];
      pieces.splice(k, 1);
    }
  }

  const items = pieces.map((p) => p.map(esc).join('')).join('-');
  if (items === '') return negated ? '[^]' : '(?!)';
  return negated ? `[^${items}]` : `[${items}]`;
}

/** The RegExp (whole-string, Unicode) a Python fnmatch pattern compiles to. */
export function fnmatchToRegExp(pattern: string): RegExp {
  const cached = cache.get(pattern);
  if (cached) return cached;

  const chars = Array.from(pattern);
  let out = '';
  for (let i = 0; i < chars.length; ) {
    const c = chars[i]!;
    i++;
    if (c === '*') {
      if (!out.endsWith('[^]*')) out += '[^]*';
    } else if (c === '?') {
      out += '[^]';
    } else if (c === '[') {
      let j = i;
      if (chars[j] === '!') j++;
      if (chars[j] === ']') j++;
      while (j < chars.length && chars[j] !== ']') j++;
      if (j >= chars.length) {
        out += esc('[');
      } else {
        const negated = chars[i] === '!';
        out += charClass(chars.slice(negated ? i + 1 : i, j), negated);
        i = j + 1;
      }
    } else {
      out += esc(c);
    }
  }
  const re = new RegExp(`^(?:${out})$`, 'su');
  cache.set(pattern, re);
  return re;
}

/** Python's fnmatch.fnmatchcase(name, pattern). */
export function fnmatch(name: string, pattern: string): boolean {
  return fnmatchToRegExp(pattern).test(name);
}
