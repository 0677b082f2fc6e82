// How the installed `ceilopoll` starts: the node options of the `#!/usr/bin/env -S node ...` line of
// its entry point (src/cli/main.ts, kept by tsc in dist/src/cli/main.js). The harnesses that start
// the built agent with `node` themselves (bench-compare) pass the same options.

import { readFileSync } from 'node:fs';

/** The options after `node` on the first line of `file`; throws if that line is not a `#!` line running node. */
export function shebangNodeOptions(file: string): string[] {
  const first = readFileSync(file, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env(?: -S)? node((?: +\S+)*) *$/.exec(first);
  if (!m) throw new Error(`${file}: its first line ${JSON.stringify(first)} is not "#!/usr/bin/env [-S] node [options]"`);
  return (m[1] ?? '').split(' ').filter(Boolean);
}
