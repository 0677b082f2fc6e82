// `ceilopoll check-config`: reads ceilometer.conf and polling.yaml the way `run` would, reports
// every problem (file, section and key or YAML path, the bad value, what is allowed), and prints
// the effective configuration with its secrets redacted.

import { parseArgs } from 'node:util';

import { renderEffectiveConfig } from '../config/index.js';
import { CONFIG_HELP, CONFIG_OPTIONS, configSources, loadCliConfig } from './config-args.js';

export const CHECK_CONFIG_HELP = `usage: ceilopoll check-config [options]

Validates the configuration \`ceilopoll run\` would read (ceilometer.conf, then polling.yaml from
[polling] cfg_file) and prints the effective values, where each came from, the polling tasks, the
meters left to ceilometer-polling and the warnings. Passwords, telemetry_secret and the password
in a transport_url are shown as ***.

${CONFIG_HELP}

options:
  -q, --quiet        print nothing when the configuration is valid
  -h, --help         this text

exit status: 0 valid (warnings allowed), 2 invalid or bad usage (every problem is printed)`;

export async function checkConfigMain(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, tokens: true, options: { ...CONFIG_OPTIONS, quiet: { type: 'boolean', short: 'q' }, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    process.stderr.write(`ceilopoll check-config: ${(err as Error).message}\nTry 'ceilopoll check-config --help'.\n`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(`${CHECK_CONFIG_HELP}\n`);
    return 0;
  }
  // the warnings are part of the rendering; do not print them twice
  const cfg = await loadCliConfig(configSources(parsed.tokens), () => undefined, { polling: true });
  if (typeof cfg === 'number') return cfg;
  if (!parsed.values.quiet) process.stdout.write(`${renderEffectiveConfig(cfg)}\n`);
  return 0;
}
