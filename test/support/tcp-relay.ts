// A TCP relay on 127.0.0.1 in front of a server, which a test breaks on purpose: it records what each
// client sends, can freeze the open connections (the server's bytes are held back, as in a one-way
// partition, or all traffic) and cut them. test/integration/amqp-publish.test.ts puts it between the
// publisher and the machine's RabbitMQ; the chaos row confirms-cut.test.ts between ceilopoll and a
// private node, so that the broker takes a cycle's publishes while their confirms never arrive.

import { once } from 'node:events';
import net from 'node:net';

interface Conn {
  client: net.Socket;
  server: net.Socket;
  /** the client's bytes go through */
  up: boolean;
  /** the server's bytes go through */
  down: boolean;
}

export class TcpRelay {
  /** per connection accepted, in order: the bytes its client sent */
  readonly captures: Buffer[][] = [];
  /** bytes from the server held back by freeze() (thrown away) */
  heldBytes = 0;
  private readonly conns = new Set<Conn>();

  private constructor(
    private readonly listener: net.Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    listener.on('connection', (client) => this.relay(client));
  }

  /** Listens on 127.0.0.1:`listenPort` (0: a free port) and relays each connection to host:port. */
  static async start(port: number, opts: { host?: string; listenPort?: number } = {}): Promise<TcpRelay> {
    const listener = net.createServer();
    listener.listen(opts.listenPort ?? 0, '127.0.0.1');
    await once(listener, 'listening');
    return new TcpRelay(listener, (listener.address() as net.AddressInfo).port, { host: opts.host ?? '127.0.0.1', port });
  }

  /** connections accepted so far */
  get accepted(): number {
    return this.captures.length;
  }

  /**
   * Holds back the server's bytes on the connections open now (publisher confirms never arrive), or
   * all their traffic with `both`. A frozen connection stays silent: the server hanging up (on
   * missed heartbeats, say) is not passed on. Connections made later are not frozen.
   */
  freeze(both = false): void {
    for (const c of this.conns) {
      c.down = false;
      if (both) c.up = false;
    }
  }

  /** Destroys every open connection, both sides; returns how many there were. */
  cut(): number {
    const n = this.conns.size;
    for (const c of this.conns) this.end(c);
    return n;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((r) => this.listener.close(r));
  }

  private relay(client: net.Socket): void {
    const server = net.connect(this.target.port, this.target.host);
    const conn: Conn = { client, server, up: true, down: true };
    const capture: Buffer[] = [];
    this.captures.push(capture);
    this.conns.add(conn);
    client.on('data', (d: Buffer) => {
      capture.push(d);
      if (conn.up) server.write(d);
    });
    server.on('data', (d: Buffer) => {
      if (conn.down) client.write(d);
      else this.heldBytes += d.length;
    });
    const end = (): void => this.end(conn);
    client.on('error', end);
    client.on('close', end);
    const serverGone = (): void => (conn.down ? end() : void server.destroy());
    server.on('error', serverGone);
    server.on('close', serverGone);
  }

  private end(c: Conn): void {
    this.conns.delete(c);
    c.client.destroy();
    c.server.destroy();
  }
}
