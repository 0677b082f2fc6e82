// A process that appends to a spool and prints each seq once `append` has returned, for the test
// that kills it with SIGKILL: everything printed must be in the spool when it is opened again.
//
//   node --import tsx test/support/spool-writer.ts <spool file> <count>
//
// Entry i's body is `<i>\n` followed by a real notification body, so a reader can check the bytes.
// stdout is a pipe, and writes to a pipe are synchronous in Node on Linux: a printed seq was
// appended before the next append began.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { Spool } from '../../src/publish/spool.js';

export const WRITER_BODY = readFileSync(fileURLToPath(new URL('../fixtures/golden/zed-3guests/amqp/0001.body', import.meta.url)));

export function writerBody(i: number): Buffer {
  return Buffer.concat([Buffer.from(`${i}\n`), WRITER_BODY]);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, count] = process.argv.slice(2);
  if (!file || !count) throw new Error('usage: spool-writer.ts <spool file> <count>');
  const spool = Spool.open(file, { maxBytes: 1024 * 1024 * 1024, maxAgeMs: 24 * 3600_000 });
  process.stdout.write('open\n');
  for (let i = 0; i < Number(count); i++) {
    const seq = spool.append('memory.usage', writerBody(i), JSON.stringify({ i }));
    process.stdout.write(`${seq} ${i}\n`);
  }
  spool.close();
}
