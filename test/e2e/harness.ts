// Runs test/e2e/notification-agent.sh (install / start DIR / stop DIR / status DIR).

import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('./notification-agent.sh', import.meta.url));

export async function notificationAgent(command: 'install' | 'start' | 'stop' | 'status', dir?: string, env: Record<string, string> = {}): Promise<string> {
  try {
    const { stdout, stderr } = await run('bash', dir === undefined ? [SCRIPT, command] : [SCRIPT, command, dir], {
      env: { ...process.env, ...env },
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout + stderr;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`notification-agent.sh ${command} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}
