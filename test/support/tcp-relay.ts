// A TCP relay on 127.0.0.1 in front of a server, which a test breaks on purpose: it can hold back
// what the server sends (the client's bytes still go through, as in a one-way partition) and cut
// every connection at once. The chaos scenario confirms-cut.test.ts puts it between ceilopoll and
// RabbitMQ, so that the broker takes a cycle's publishes while their confirms never arrive.

import net from 'node:net';

interface Pair {
  client: net.Socket;
  server: net.Socket;
}

export class TcpRelay {
  private readonly pairs = new Set<Pair>();
  private holding = false;
  /** bytes from the server kept back (and then thrown away by cut) */
  heldBytes = 0;
  /** connections accepted so far */
  accepted = 0;

  private constructor(
    private readonly listener: net.Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    listener.on('connection', (client) => this.relay(client));
  }

  /** Listens on a free port of 127.0.0.1 and relays each connection to host:port. */
  static async start(port: number, host = '127.0.0.1'): Promise<TcpRelay> {
    const listener = net.createServer();
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(0, '127.0.0.1', () => resolve());
    });
    return new TcpRelay(listener, (listener.address() as net.AddressInfo).port, { host, port });
  }

  /** connections open now */
  get open(): number {
    return this.pairs.size;
  }

  /** From now on the server's bytes are kept back from every client, until cut(). */
  hold(): void {
    this.holding = true;
  }

  /** Destroys every open connection (both sides) and ends the hold; returns how many were cut. */
  cut(): number {
    const n = this.pairs.size;
    for (const p of this.pairs) this.drop(p);
    this.holding = false;
    return n;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.listener.close(() => resolve()));
  }

  private relay(client: net.Socket): void {
    this.accepted++;
    const server = net.connect(this.target.port, this.target.host);
    const pair = { client, server };
    this.pairs.add(pair);
    client.on('data', (d: Buffer) => server.write(d));
    server.on('data', (d: Buffer) => {
      if (this.holding) this.heldBytes += d.length;
      else client.write(d);
    });
    const end = (): void => this.drop(pair);
    for (const s of [client, server]) {
      s.on('error', end);
      s.on('close', end);
    }
  }

  private drop(p: Pair): void {
    if (!this.pairs.delete(p)) return;
    p.client.destroy();
    p.server.destroy();
  }
}
