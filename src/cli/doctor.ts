// `ceilopoll doctor`: per instance, why memory.usage is there or not, and the fix.

import { parseArgs } from 'node:util';

import { doctorCommand } from '../doctor/index.js';
import { CONFIG_HELP, CONFIG_OPTIONS, configSources, loadCliConfig } from './config-args.js';

export const DOCTOR_HELP = `usage: ceilopoll doctor [options]

A table of every domain on this host: its state, balloon device, stats period, the age of the
guest's last balloon report, the memory.usage formula and value, and the reason when there is
none. Under it, each problem found with its fix (the stats period, nova.conf's
[libvirt] mem_stats_period_seconds, the guest's balloon driver, virtio-win's BLNSVR service, ...).
Read-only unless --fix-period is given.

${CONFIG_HELP}

options:
  --uri URI          [DEFAULT] libvirt_uri
  --fix-period N     set a live balloon stats period of N seconds (1..86400) on every running
                     domain that has a virtio balloon and no period, then exit. Needs the
                     read-write libvirt socket (root). Lasts until Nova redefines the domain
                     (hard reboot, resize, migration, rebuild); nova.conf [libvirt]
                     mem_stats_period_seconds makes it permanent.
  --domain NAME      with --fix-period: only this domain (name or uuid; repeatable)
  -h, --help         this text

exit status: 0 no instance has a problem (or --fix-period set every period it could),
1 libvirt unreachable or a fix failed, 2 bad usage or configuration, 3 problems found`;

export async function doctorMain(argv: string[]): Promise<number> {
  const usage = (msg: string): number => {
    process.stderr.write(`ceilopoll doctor: ${msg}\nTry 'ceilopoll doctor --help'.\n`);
    return 2;
  };
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      tokens: true,
      options: { ...CONFIG_OPTIONS, uri: { type: 'string' }, 'fix-period': { type: 'string' }, domain: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (err) {
    return usage((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) {
    process.stdout.write(`${DOCTOR_HELP}\n`);
    return 0;
  }
  let fixPeriod: number | undefined;
  if (v['fix-period'] !== undefined) {
    fixPeriod = Number(v['fix-period']);
    if (!Number.isInteger(fixPeriod) || fixPeriod < 1 || fixPeriod > 86_400) return usage(`--fix-period ${v['fix-period']}: expected a whole number of seconds from 1 to 86400`);
  }
  if (v.domain && fixPeriod === undefined) return usage('--domain only goes with --fix-period');
  const cfg = await loadCliConfig(configSources(parsed.tokens), (w) => process.stderr.write(`ceilopoll: warning: ${w}\n`), { polling: false, overrides: { libvirtUri: v.uri } });
  if (typeof cfg === 'number') return cfg;
  return doctorCommand({ uri: cfg.libvirtUri, fixPeriod, domains: v.domain, stalenessFactor: cfg.ceilopoll.stalenessFactor });
}
