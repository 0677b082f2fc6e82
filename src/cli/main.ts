#!/usr/bin/env -S node --max-semi-space-size=1
// ceilopoll's command line: `ceilopoll <command> [options]`, each command with its own --help.
//
// The node option above caps V8's young generation at 1 MiB a semi-space (Node 20's default lets it
// grow to 16). Measured with `bench-compare` (README, Benchmarks): at 5000 domains the agent's RSS
// after a cycle went from 198-226 MB (229-260 at most) to 142-146 MB (147-148 at most), for 40-50 %
// more CPU per cycle there; at 1000 domains the CPU moved within the machine's spread (175-184
// against 139-194 ms) and the largest RSS went from 140-153 to 109-118 MB. Run
// `node dist/src/cli/main.js` to start without it. `env -S` splits the line.

import { checkConfigMain } from './check-config.js';
import { doctorMain } from './doctor.js';
import { memstatsMain } from './memstats.js';
import { pollMain } from './poll.js';
import { runMain } from './run.js';
import { VERSION } from '../version.js';

const COMMANDS: Record<string, { main: (argv: string[]) => Promise<number>; summary: string }> = {
  run: { main: runMain, summary: 'the agent: poll on polling.yaml\'s intervals and publish to the notification bus' },
  poll: { main: pollMain, summary: 'poll --once: one polling cycle, the samples printed instead of published' },
  'check-config': { main: checkConfigMain, summary: 'validate ceilometer.conf and polling.yaml; print the effective configuration' },
  doctor: { main: doctorMain, summary: 'why an instance has no memory.usage, and the fix; --fix-period N sets stats periods' },
  memstats: { main: memstatsMain, summary: 'every domain\'s memory statistics as libvirt reports them' },
};

const USAGE = `usage: ceilopoll <command> [options]

commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(13)} ${c.summary}`).join('\n')}

\`ceilopoll <command> --help\` for a command's options and exit status.
  -h, --help      this text
  --version       ceilopoll's version

exit status: 0 ok, 1 a runtime failure (libvirt unreachable, ...), 2 bad usage or configuration,
3 doctor found problems`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    process.stderr.write(`ceilopoll: no command given\n${USAGE}\n`);
    return 2;
  }
  if (command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command === '--version') {
    process.stdout.write(`ceilopoll ${VERSION}\n`);
    return 0;
  }
  const c = COMMANDS[command];
  if (!c) {
    process.stderr.write(`ceilopoll: unknown command "${command}"\n${USAGE}\n`);
    return 2;
  }
  return c.main(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`ceilopoll: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
