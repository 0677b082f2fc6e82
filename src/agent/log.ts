// Logging in oslo.log's line style, so ceilopoll's lines sit well beside the rest of an OpenStack
// node's logs: `YYYY-MM-DD HH:MM:SS.mmm PID LEVEL module [-] message` (local time, as oslo.log).
// JSON lines as an option, for log shippers.

export type LogLevel = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';
const ORDER: Record<LogLevel, number> = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40 };

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warning(msg: string): void;
  error(msg: string): void;
  child(module: string): Logger;
  /** false when debug lines are dropped, so that callers can skip building them (undefined: assume on) */
  readonly debugEnabled?: boolean;
}

export interface LogOptions {
  level?: LogLevel;
  format?: 'oslo' | 'json';
  write?: (line: string) => void;
  now?: () => Date;
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

export function osloTimestamp(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function createLogger(module: string, opts: LogOptions = {}): Logger {
  const min = ORDER[opts.level ?? 'INFO'];
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const now = opts.now ?? (() => new Date());
  const emit = (level: LogLevel, msg: string): void => {
    if (ORDER[level] < min) return;
    const d = now();
    // One event, one line: a newline inside a message (a display name, a libvirt error) must not
    // forge a second log line.
    const text = msg.replace(/\r?\n/g, '\\n');
    write(opts.format === 'json'
      ? JSON.stringify({ timestamp: d.toISOString(), pid: process.pid, level, module, message: text })
      : `${osloTimestamp(d)} ${process.pid} ${level} ${module} [-] ${text}`);
  };
  return {
    debug: (m) => emit('DEBUG', m),
    info: (m) => emit('INFO', m),
    warning: (m) => emit('WARNING', m),
    error: (m) => emit('ERROR', m),
    child: (m) => createLogger(m, opts),
    debugEnabled: min <= ORDER.DEBUG,
  };
}
