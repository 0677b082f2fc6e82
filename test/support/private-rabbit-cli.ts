// Manual and demo use of the private RabbitMQ node of private-rabbit.ts, one command per call; the
// node outlives the call, its directory holds everything the next call needs:
//   npx tsx test/support/private-rabbit-cli.ts start   --dir D [--port P] [--name N]
//   npx tsx test/support/private-rabbit-cli.ts stop|kill|restart|destroy|status --dir D
// start creates the node in D on the first call and starts it again on later ones (after stop or kill).

import { parseArgs } from 'node:util';

import { PrivateRabbit } from './private-rabbit.js';

const USAGE = 'usage: npx tsx test/support/private-rabbit-cli.ts start|stop|kill|restart|destroy|status --dir D [--port P] [--name N]';

function describeNode(r: PrivateRabbit): string {
  const { beam, children } = r.pids();
  return [
    `node    ${r.node}`,
    `url     ${r.url}`,
    `dist    127.0.0.1:${r.distPort}`,
    `dir     ${r.dir}`,
    `log     ${r.logFile}`,
    `running ${beam === undefined ? 'no' : `yes (beam.smp ${beam}${children.length ? `, children ${children.join(' ')}` : ''})`}`,
  ].join('\n');
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { dir: { type: 'string' }, port: { type: 'string' }, name: { type: 'string' } },
  });
  const [cmd, ...extra] = positionals;
  if (!cmd || extra.length > 0 || !values.dir) throw new Error(USAGE);
  const dir = values.dir;
  const port = values.port === undefined ? undefined : Number(values.port);
  const existing = await PrivateRabbit.open(dir).catch(() => undefined);
  const opened = (): PrivateRabbit => {
    if (!existing) throw new Error(`no node in ${dir}: \`start --dir ${dir}\` first`);
    return existing;
  };

  switch (cmd) {
    case 'start': {
      if (!existing) {
        const r = await PrivateRabbit.start({ dir, port, name: values.name, keepAfterExit: true });
        console.log(describeNode(r));
        return;
      }
      if (port !== undefined && port !== existing.port) throw new Error(`the node in ${dir} uses port ${existing.port}; destroy it to change ports`);
      if (existing.isRunning()) console.log('already running');
      else await existing.startAgain();
      console.log(describeNode(existing));
      return;
    }
    case 'stop':
      await opened().stop();
      break;
    case 'kill':
      await opened().kill();
      break;
    case 'restart': {
      const r = opened();
      await r.restart();
      console.log(describeNode(r));
      return;
    }
    case 'destroy':
      await opened().destroy();
      console.log(`stopped the node and removed ${dir}`);
      return;
    case 'status':
      console.log(describeNode(opened()));
      return;
    default:
      throw new Error(USAGE);
  }
  console.log(describeNode(opened()));
}

try {
  await main(process.argv.slice(2));
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
}
