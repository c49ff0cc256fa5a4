import { connect, createServer, type Server, type Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import { endSpan, type Span, startSpan, withSpanIds } from '@epreuve/kube';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { labelOf, type Resolution, type Route } from './routes.ts';

/** PostgreSQL's pre-TLS requests (protocol codes): SSLRequest, GSSENCRequest, and a plain startup. */
const PG_SSL_REQUEST = 80877103;
const PG_GSSENC_REQUEST = 80877104;
const PG_PROTOCOL_3 = 196608;
const TLS_HANDSHAKE = 0x16;

export interface GatewayOptions {
  /** Sandboxes are served as `<label>.<domain>`; a wildcard certificate for `*.<domain>`. */
  domain: string;
  tls: SecureContext;
  /** Where a host label goes (an informer lookup in production, a table in tests). */
  resolve: (label: string) => Resolution;
  maxConnectionsPerSandbox: number;
  idleTimeoutMs: number;
  handshakeTimeoutMs: number;
  log: Logger;
  registry: Registry;
}

/**
 * How a client opened its connection: PostgreSQL's SSLRequest preamble (answered, then TLS), or TLS
 * straight away. A refusal is written in the client's own protocol when it can be.
 */
type Opening = 'postgres' | 'tls';

/**
 * One candidate connection: a span from accept to close (its events arrive on sockets, outside
 * any async context, so the span is carried by hand) and a logger whose lines carry its ids.
 */
interface Conn {
  span: Span;
  log: Logger;
  /** Handed to a sandbox: the span ends with the forwarding, which records how it went. */
  forwarded?: boolean;
}

/**
 * The sandbox gateway: one TLS endpoint through which candidates reach their sandboxes from their
 * own machines with plain `psql`, `mongosh`, drivers or `curl`. It routes on the TLS server name
 * (SNI) — `<sandbox>-<hash>.<domain>` — to the sandbox's Service, speaking PostgreSQL's SSLRequest
 * preamble (libpq's default) as well as direct TLS (MongoDB, HTTPS, libpq 17 direct). It decrypts
 * and forwards bytes; authentication stays with each database.
 */
export class SandboxGateway {
  private readonly server: Server;
  private readonly opts: GatewayOptions;
  private readonly perSandbox = new Map<string, number>();
  private readonly open = new Set<Socket>();
  private readonly connections: Counter<'kind' | 'result'>;
  private readonly active: Gauge<'kind'>;
  private readonly bytes: Counter<'direction'>;

  constructor(opts: GatewayOptions) {
    this.opts = opts;
    const registers = [opts.registry];
    this.connections = new Counter({
      name: 'epreuve_gateway_connections_total',
      help: 'Candidate connections through the sandbox gateway, by sandbox kind and result',
      labelNames: ['kind', 'result'] as const,
      registers,
    });
    this.active = new Gauge({
      name: 'epreuve_gateway_active_connections',
      help: 'Connections the sandbox gateway is forwarding now',
      labelNames: ['kind'] as const,
      registers,
    });
    this.bytes = new Counter({
      name: 'epreuve_gateway_bytes_total',
      help: 'Bytes forwarded by the sandbox gateway, to sandboxes (up) and to candidates (down)',
      labelNames: ['direction'] as const,
      registers,
    });
    this.server = createServer((socket) => this.accept(socket));
  }

  listen(port: number, host = '0.0.0.0'): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  /** Stops accepting and cuts the connections in flight (their databases keep the work). */
  close(): Promise<void> {
    for (const socket of this.open) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    const span = startSpan('epreuve-gateway', 'gateway connection', {
      kind: 'server',
      attributes: { 'network.transport': 'tcp', 'client.address': socket.remoteAddress ?? '' },
    });
    const conn: Conn = { span, log: withSpanIds(this.opts.log, span) };
    // Whatever else happened, the span ends with the connection (a no-op when a result ended it).
    socket.once('close', () => {
      if (!conn.forwarded) endSpan(span);
    });
    this.track(socket);
    socket.setNoDelay(true);
    // A client that never finishes its handshake must not hold a socket for long.
    socket.setTimeout(this.opts.handshakeTimeoutMs, () => this.fail(conn, socket, 'handshake_timeout'));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered[0] === TLS_HANDSHAKE) return start('tls');
      if (buffered.length < 8) return;
      const code = buffered.readInt32BE(4);
      const length = buffered.readInt32BE(0);
      if (length === 8 && code === PG_SSL_REQUEST) {
        buffered = buffered.subarray(8);
        socket.write('S');
        return start('postgres');
      }
      if (length === 8 && code === PG_GSSENC_REQUEST) {
        // No GSS encryption here: libpq then falls back to an SSLRequest on the same socket.
        buffered = buffered.subarray(8);
        socket.write('N');
        return;
      }
      socket.off('data', onData);
      if (code === PG_PROTOCOL_3) {
        socket.end(
          pgError('08P01', 'the Épreuve sandbox gateway requires TLS: connect with sslmode=require'),
        );
      } else if (/^[A-Z]+ /.test(buffered.toString('latin1', 0, 8))) {
        socket.end(httpError(400, 'the Épreuve sandbox gateway speaks HTTPS only: use https://'));
      } else {
        socket.destroy();
      }
      this.connections.inc({ kind: 'unknown', result: 'not_tls' });
      span.setAttribute('epreuve.gateway.result', 'not_tls');
      endSpan(span, 'not TLS');
    };
    const start = (opening: Opening) => {
      socket.off('data', onData);
      socket.pause();
      if (buffered.length > 0) socket.unshift(buffered);
      span.setAttribute('epreuve.gateway.opening', opening);
      this.startTls(conn, socket, opening);
    };
    socket.on('data', onData);
  }

  private startTls(conn: Conn, raw: Socket, opening: Opening): void {
    const secure = new TLSSocket(raw, {
      isServer: true,
      secureContext: this.opts.tls,
      // libpq 17's direct TLS asks for "postgresql"; HTTPS clients for http/1.1.
      ALPNProtocols: ['postgresql', 'http/1.1'],
    });
    this.track(secure);
    let established = false;
    secure.on('error', (err) => {
      // A reset once bytes flow is a client going away, not a failed connection.
      if (!established) endSpan(conn.span, `TLS: ${err.message}`);
      secure.destroy();
      raw.destroy();
    });
    secure.once('secure', () => {
      established = true;
      const label = labelOf(secure.servername || undefined, this.opts.domain);
      const resolution: Resolution = label
        ? this.opts.resolve(label)
        : {
            refused: `connect to <sandbox>.${this.opts.domain} by name (the host your candidate page shows), not by address`,
          };
      conn.span.setAttribute('epreuve.gateway.label', label ?? '');
      if ('refused' in resolution) return this.refuse(conn, secure, opening, resolution.refused, label);
      this.forward(conn, secure, raw, resolution.route, label!, opening);
    });
  }

  private forward(conn: Conn, secure: TLSSocket, raw: Socket, route: Route, label: string, opening: Opening) {
    const { span } = conn;
    span.setAttributes({
      'epreuve.assessment': route.assessment,
      'epreuve.sandbox': route.sandbox,
      'epreuve.sandbox.kind': route.kind,
    });
    const count = this.perSandbox.get(label) ?? 0;
    if (count >= this.opts.maxConnectionsPerSandbox) {
      return this.refuse(
        conn,
        secure,
        opening,
        `too many connections to this sandbox (at most ${this.opts.maxConnectionsPerSandbox}); close some and retry`,
        label,
      );
    }
    this.perSandbox.set(label, count + 1);
    conn.forwarded = true;
    this.active.inc({ kind: route.kind });
    const started = Date.now();
    let up = 0;
    let down = 0;
    const backend = connect({ host: route.host, port: route.port });
    this.track(backend);
    backend.setNoDelay(true);
    raw.setTimeout(0);
    secure.setTimeout(this.opts.idleTimeoutMs, () => secure.destroy());
    let done = false;
    const finish = (result: string) => {
      if (done) return;
      done = true;
      this.perSandbox.set(label, (this.perSandbox.get(label) ?? 1) - 1);
      if (this.perSandbox.get(label) === 0) this.perSandbox.delete(label);
      this.active.dec({ kind: route.kind });
      this.connections.inc({ kind: route.kind, result });
      this.bytes.inc({ direction: 'up' }, up);
      this.bytes.inc({ direction: 'down' }, down);
      conn.log.info(
        { assessment: route.assessment, sandbox: route.sandbox, result, up, down, ms: Date.now() - started },
        'sandbox connection closed',
      );
      span.setAttributes({
        'epreuve.gateway.result': result,
        'epreuve.gateway.bytes_up': up,
        'epreuve.gateway.bytes_down': down,
      });
      endSpan(span, result === 'closed' ? undefined : result);
      secure.destroy();
      backend.destroy();
    };
    backend.once('connect', () => {
      secure.on('data', (chunk: Buffer) => {
        up += chunk.length;
      });
      backend.on('data', (chunk: Buffer) => {
        down += chunk.length;
      });
      secure.pipe(backend);
      backend.pipe(secure);
      secure.resume();
    });
    backend.on('error', (err) => {
      if (up === 0 && down === 0) {
        conn.log.warn(
          { assessment: route.assessment, sandbox: route.sandbox, err: err.message },
          'sandbox unreachable',
        );
        if (route.kind === 'postgres')
          secure.end(pgError('08006', 'the sandbox is not answering; try again in a minute'));
      }
      finish('backend_error');
    });
    backend.on('close', () => finish('closed'));
    secure.on('close', () => finish('closed'));
  }

  private refuse(
    conn: Conn,
    secure: TLSSocket,
    opening: Opening,
    reason: string,
    label: string | undefined,
  ): void {
    this.connections.inc({ kind: 'unknown', result: 'refused' });
    conn.log.info({ label, reason }, 'sandbox connection refused');
    conn.span.setAttribute('epreuve.gateway.result', 'refused');
    endSpan(conn.span, reason);
    if (opening === 'postgres' || secure.alpnProtocol === 'postgresql') {
      secure.end(pgError('08004', reason));
    } else if (secure.alpnProtocol === 'http/1.1') {
      secure.end(httpError(503, reason));
    } else {
      // MongoDB drivers have no message for this stage: close; the gateway log says why.
      secure.destroy();
    }
  }

  private fail(conn: Conn, socket: Socket, result: string): void {
    this.connections.inc({ kind: 'unknown', result });
    conn.span.setAttribute('epreuve.gateway.result', result);
    endSpan(conn.span, result);
    socket.destroy();
  }

  private track(socket: Socket): void {
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
  }
}

/** A PostgreSQL ErrorResponse: psql prints "FATAL:  <message>". */
export function pgError(code: string, message: string): Buffer {
  const fields = Buffer.concat([
    ...[
      ['S', 'FATAL'],
      ['V', 'FATAL'],
      ['C', code],
      ['M', message],
    ].map(([field, value]) =>
      Buffer.concat([Buffer.from(field!, 'latin1'), Buffer.from(value!, 'utf8'), Buffer.from([0])]),
    ),
    Buffer.from([0]),
  ]);
  const header = Buffer.alloc(5);
  header.write('E', 0, 'latin1');
  header.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([header, fields]);
}

/** A whole HTTP/1.1 problem+json response that closes the connection (curl prints the title). */
export function httpError(status: number, message: string): string {
  const body = `${JSON.stringify({ title: message, status })}\n`;
  const text = status === 400 ? 'Bad Request' : 'Service Unavailable';
  return `HTTP/1.1 ${status} ${text}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}
