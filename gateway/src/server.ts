import { connect, createServer, type Server, type Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import { endSpan, type Span, startSpan, withSpanIds } from '@epreuve/kube';
import ipaddr from 'ipaddr.js';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { loginWatcher } from './login.ts';
import { pendingToEvict } from './pending.ts';
import { PostgresStreamWatcher, readPreamble } from './preamble.ts';
import { labelOf, type Resolution, type Route } from './routes.ts';

export interface GatewayOptions {
  /** Sandboxes are served as `<label>.<domain>`; a wildcard certificate for `*.<domain>`. */
  domain: string;
  tls: SecureContext;
  /** Where a host label goes (an informer lookup in production, a table in tests). */
  resolve: (label: string) => Resolution;
  /** Every connection the gateway holds, in any state (beyond it the kernel's accept is dropped). */
  maxConnections: number;
  /** Connections from one client address, in any state: one stranger cannot fill the gateway. */
  maxConnectionsPerClient: number;
  /** A candidate's own logged-in connections to one sandbox. */
  maxConnectionsPerSandbox: number;
  /**
   * Connections to one sandbox not logged in yet, per client address: the address's own oldest
   * makes room for its newest, so strangers never push out the candidate's login.
   */
  maxPendingPerSandbox: number;
  /**
   * Connections to one sandbox not logged in yet, from all addresses together (≥ the per-address
   * cap): room is made from the address holding the most (pending.ts), never from logged-in ones.
   */
  maxPendingTotalPerSandbox: number;
  /** Logged-in connections: a session may sit idle while the candidate thinks. */
  idleTimeoutMs: number;
  /**
   * A connection the sandbox answered but that never logged in (a MongoDB monitor's `hello`, an
   * HTTP 401 kept alive) is closed after this long without traffic (default 30 s).
   */
  unauthenticatedIdleMs?: number;
  /** Absolute: from accept until the database has answered (a trickle never resets it). */
  handshakeTimeoutMs: number;
  /** How often open connections are checked against their assessment (expiry, revocation). */
  recheckMs?: number;
  /**
   * CancelRequests matching no open session that one client address may send per minute (default
   * 20): beyond it, that address's cancels are dropped unread, so guessing another candidate's
   * 32-bit secret key takes years. psql never misses but for a session that just ended.
   */
  maxCancelMissesPerMinute?: number;
  /**
   * CancelRequests, matching or not, that one client address may send per minute (default 60):
   * each forwarded one opens a connection to a sandbox, so a candidate replaying their own key
   * must not make the gateway open them without end (red team 5).
   */
  maxCancelsPerMinute?: number;
  log: Logger;
  registry: Registry;
  /** Told of each logged-in session and its end (integrity signals, signals.ts); never refuses. */
  signals?: SessionObserver;
}

/** Who hears of candidates' sessions: `assessment` is `team/name`, `client` an address. */
export interface SessionObserver {
  opened(assessment: string, sandbox: string, client: string, uid?: string): void;
  closed(assessment: string): void;
}

/**
 * How a client opened its connection: PostgreSQL's SSLRequest preamble (answered, then TLS), or TLS
 * straight away. A refusal is written in the client's own protocol when it can be.
 */
type Opening = 'postgres' | 'tls';

/**
 * What a new connection hears when its sandbox is not open, whatever the reason — a name never
 * served, an assessment ended, deleted, failed, not started or still starting: host names carry no
 * secret, so distinct answers told strangers which assessments exist. The reason itself goes to
 * the log and the span; the candidate's page shows their assessment's state.
 */
export const NOT_OPEN =
  'no sandbox is open under this name: check the host on your candidate page (sandboxes open when you press Start and close when the assessment ends)';

/** One connection being forwarded to a sandbox, from routing until it closes. */
interface Forwarded {
  label: string;
  route: Route;
  /** The client's address: connections not logged in yet are capped per address. */
  client: string;
  /** Logged in (the sandbox accepted a credential): the candidate's own, counted and observed. */
  established: boolean;
  /** Ends the connection with a reason the client prints where its protocol allows. */
  cut: (reason: string) => void;
}

/**
 * One candidate connection: a span from accept to close (its events arrive on sockets, outside
 * any async context, so the span is carried by hand) and a logger whose lines carry its ids.
 */
interface Conn {
  span: Span;
  log: Logger;
  /** The client's address (clientKey). */
  client: string;
  /** Handed to a sandbox: the span ends with the forwarding, which records how it went. */
  forwarded?: boolean;
}

/**
 * The client's address as a key: IPv4-mapped IPv6 is the same client as its IPv4 form, and an
 * IPv6 client is its /64 (one host commonly holds a whole /64, so per-/128 caps would be no caps).
 */
export function clientKey(address: string | undefined): string {
  if (!address || !ipaddr.isValid(address)) return 'unknown';
  const parsed = ipaddr.process(address); // ::ffff:a.b.c.d → a.b.c.d
  if (parsed.kind() === 'ipv4') return parsed.toString();
  return `${(parsed as ipaddr.IPv6).parts
    .slice(0, 4)
    .map((p) => p.toString(16))
    .join(':')}::/64`;
}

/**
 * The sandbox gateway: one TLS endpoint through which candidates reach their sandboxes from their
 * own machines with plain `psql`, `mongosh`, drivers or `curl`. It routes on the TLS server name
 * (SNI) — `<sandbox>-<host key>.<domain>` — to the sandbox's Service, speaking PostgreSQL's SSLRequest
 * preamble (libpq's default) as well as direct TLS (MongoDB, HTTPS, libpq 17 direct). It decrypts
 * and forwards bytes; authentication stays with each database.
 *
 * Strangers reach it too, so every stage is bounded: the pre-TLS preamble (preamble.ts), an
 * absolute deadline until the database answers, connections per client address and in total, and
 * per sandbox the candidate's cap on logged-in connections apart from a small cap, per client
 * address, on connections not logged in yet, and a total cap on those that evicts from the
 * address holding the most (pending.ts; login.ts says when MongoDB and the data API are logged in).
 * Open connections follow their assessment: at expiry or revocation they are cut within
 * `recheckMs` (+ the informer's delay).
 */
export class SandboxGateway {
  private readonly server: Server;
  private readonly opts: GatewayOptions;
  private readonly perClient = new Map<string, number>();
  private readonly forwarded = new Set<Forwarded>();
  /** Logged-in PostgreSQL sessions by the key their BackendKeyData gave psql (hex). */
  private readonly cancelKeys = new Map<string, Forwarded>();
  /** Per client address: CancelRequests that matched no session in the current minute. */
  private readonly cancelCounts = new Map<string, { since: number; misses: number; all: number }>();
  private readonly open = new Set<Socket>();
  private readonly recheck: NodeJS.Timeout;
  private readonly connections: Counter<'kind' | 'result'>;
  private readonly active: Gauge<'kind'>;
  private readonly pending: Gauge;
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
    this.pending = new Gauge({
      name: 'epreuve_gateway_pending_connections',
      help: 'Connections routed to a sandbox whose database has not accepted a login yet',
      registers,
    });
    this.bytes = new Counter({
      name: 'epreuve_gateway_bytes_total',
      help: 'Bytes forwarded by the sandbox gateway, to sandboxes (up) and to candidates (down)',
      labelNames: ['direction'] as const,
      registers,
    });
    this.server = createServer((socket) => this.accept(socket));
    this.server.maxConnections = opts.maxConnections;
    this.server.on('drop', () => this.connections.inc({ kind: 'unknown', result: 'gateway_full' }));
    this.server.on('error', (err) => opts.log.error({ err: err.message }, 'gateway listener error'));
    this.recheck = setInterval(() => this.followAssessments(), opts.recheckMs ?? 1000).unref();
  }

  listen(port: number, host = '0.0.0.0'): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  /** Stops accepting and cuts the connections in flight (their databases keep the work). */
  close(): Promise<void> {
    clearInterval(this.recheck);
    for (const socket of this.open) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Cuts open connections whose assessment no longer admits them (ended, revoked, deleted). */
  private followAssessments(): void {
    const minuteAgo = Date.now() - 60_000;
    for (const [client, counts] of this.cancelCounts)
      if (counts.since < minuteAgo) this.cancelCounts.delete(client);
    for (const connection of this.forwarded) {
      const resolution = this.opts.resolve(connection.label);
      if ('refused' in resolution) connection.cut(resolution.refused);
    }
  }

  private accept(socket: Socket): void {
    const span = startSpan('epreuve-gateway', 'gateway connection', {
      kind: 'server',
      attributes: { 'network.transport': 'tcp', 'client.address': socket.remoteAddress ?? '' },
    });
    const client = clientKey(socket.remoteAddress);
    const conn: Conn = { span, log: withSpanIds(this.opts.log, span), client };
    // Whatever else happened, the span ends with the connection (a no-op when a result ended it).
    socket.once('close', () => {
      if (!conn.forwarded) endSpan(span);
    });
    const fromClient = this.perClient.get(client) ?? 0;
    socket.on('error', () => socket.destroy());
    if (fromClient >= this.opts.maxConnectionsPerClient) {
      this.fail(conn, socket, 'client_limit');
      return;
    }
    this.perClient.set(client, fromClient + 1);
    socket.once('close', () => {
      const left = (this.perClient.get(client) ?? 1) - 1;
      if (left > 0) this.perClient.set(client, left);
      else this.perClient.delete(client);
    });
    this.track(socket);
    socket.setNoDelay(true);
    // Absolute, not idle: a steady stream or a trickle must not keep a stranger's socket alive.
    const deadline = setTimeout(
      () => this.fail(conn, socket, 'handshake_timeout'),
      this.opts.handshakeTimeoutMs,
    );
    deadline.unref();
    socket.once('close', () => clearTimeout(deadline));
    let buffered = Buffer.alloc(0);
    let gssenc = 0;
    const onData = (chunk: Buffer) => {
      // At most 7 bytes are ever kept between chunks (an incomplete 8-byte request).
      const preamble = readPreamble(buffered.length ? Buffer.concat([buffered, chunk]) : chunk, gssenc);
      if (preamble.kind === 'more') {
        buffered = Buffer.from(preamble.rest);
        gssenc = preamble.gssenc;
        if (preamble.replies) socket.write(preamble.replies);
        return;
      }
      socket.off('data', onData);
      if (preamble.kind === 'cancel') {
        clearTimeout(deadline);
        return this.cancel(conn, socket, preamble.request);
      }
      if (preamble.kind === 'tls') {
        if (preamble.replies) socket.write(preamble.replies);
        socket.pause();
        if (preamble.rest.length > 0) socket.unshift(preamble.rest);
        span.setAttribute('epreuve.gateway.opening', preamble.opening);
        return this.startTls(conn, socket, preamble.opening, () => clearTimeout(deadline));
      }
      if (preamble.why === 'plaintext_postgres') {
        socket.end(
          pgError('08P01', 'the Épreuve sandbox gateway requires TLS: connect with sslmode=require'),
        );
      } else if (preamble.why === 'plaintext_http') {
        socket.end(httpError(400, 'the Épreuve sandbox gateway speaks HTTPS only: use https://'));
      } else {
        socket.destroy();
      }
      const result = preamble.why === 'gssenc_flood' ? 'refused' : 'not_tls';
      this.connections.inc({ kind: 'unknown', result });
      span.setAttribute('epreuve.gateway.result', result);
      endSpan(span, preamble.why);
    };
    socket.on('data', onData);
  }

  private startTls(conn: Conn, raw: Socket, opening: Opening, established: () => void): void {
    const secure = new TLSSocket(raw, {
      isServer: true,
      secureContext: this.opts.tls,
      // libpq 17's direct TLS asks for "postgresql"; HTTPS clients for http/1.1.
      ALPNProtocols: ['postgresql', 'http/1.1'],
    });
    this.track(secure);
    let handshaken = false;
    secure.on('error', (err) => {
      // A reset once bytes flow is a client going away, not a failed connection.
      if (!handshaken) endSpan(conn.span, `TLS: ${err.message}`);
      secure.destroy();
      raw.destroy();
    });
    secure.once('secure', () => {
      handshaken = true;
      const label = labelOf(secure.servername || undefined, this.opts.domain);
      const resolution: Resolution = label
        ? this.opts.resolve(label)
        : {
            refused: `connect to <sandbox>.${this.opts.domain} by name (the host your candidate page shows), not by address`,
          };
      conn.span.setAttribute('epreuve.gateway.label', label ?? '');
      if ('refused' in resolution)
        return this.refuse(conn, secure, opening, resolution.refused, label, label ? NOT_OPEN : undefined);
      this.forward(conn, secure, resolution.route, label!, opening, established);
    });
  }

  private count(label: string, established: boolean): number {
    let n = 0;
    for (const connection of this.forwarded)
      if (connection.label === label && connection.established === established) n += 1;
    return n;
  }

  private forward(
    conn: Conn,
    secure: TLSSocket,
    route: Route,
    label: string,
    opening: Opening,
    onEstablished: () => void,
  ) {
    const { span } = conn;
    span.setAttributes({
      'epreuve.assessment': route.assessment,
      'epreuve.sandbox': route.sandbox,
      'epreuve.sandbox.kind': route.kind,
    });
    const {
      maxConnectionsPerSandbox: cap,
      maxPendingPerSandbox: pendingCap,
      maxPendingTotalPerSandbox: totalCap,
    } = this.opts;
    const tooMany = `too many connections to this sandbox (at most ${cap}); close some and retry`;
    if (this.count(label, true) >= cap) return this.refuse(conn, secure, opening, tooMany, label);
    // Connections not logged in yet are capped per client address, and an address makes room
    // from its own oldest: strangers flooding logins push out only theirs, never the candidate's
    // (the first version cut the sandbox's oldest, whoever owned it).
    const waiting = [...this.forwarded].filter(
      (c) => c.label === label && !c.established && c.client === conn.client,
    );
    for (const oldest of waiting.slice(0, Math.max(0, waiting.length - pendingCap + 1))) {
      oldest.cut(
        `too many connections from your address to this sandbox are logging in (at most ${pendingCap}); retry`,
      );
    }
    // Many addresses together: N addresses would otherwise hold N × pendingCap. Cutting is
    // synchronous (finish), so the list is read again after the cuts above.
    const allWaiting = [...this.forwarded].filter((c) => c.label === label && !c.established);
    for (const evicted of pendingToEvict(allWaiting, conn.client, totalCap)) {
      evicted.cut(`too many connections to this sandbox are logging in (at most ${totalCap}); retry`);
    }
    conn.forwarded = true;
    const started = Date.now();
    let up = 0;
    let down = 0;
    const backend = connect({ host: route.host, port: route.port });
    this.track(backend);
    backend.setNoDelay(true);
    const watcher = route.kind === 'postgres' ? new PostgresStreamWatcher() : undefined;
    // MongoDB and the data API: read only until the login (login.ts), then never again.
    const login = watcher ? undefined : loginWatcher(route.kind);
    let answered = false;
    let done = false;
    let cancelKey: string | undefined;
    const connection: Forwarded = {
      label,
      route,
      client: conn.client,
      established: false,
      cut: (reason) => {
        if (done) return;
        conn.log.info(
          { assessment: route.assessment, sandbox: route.sandbox, reason },
          'sandbox connection cut',
        );
        // psql prints an ErrorResponse appended between two messages; anywhere else it would
        // corrupt the stream, so the connection is simply closed.
        backend.unpipe(secure);
        if (watcher?.atBoundary) secure.end(pgError('57P01', reason));
        finish('cut', Boolean(watcher?.atBoundary));
      },
    };
    this.forwarded.add(connection);
    this.pending.inc();
    const finish = (result: string, letTheErrorOut = false) => {
      if (done) return;
      done = true;
      this.forwarded.delete(connection);
      if (cancelKey && this.cancelKeys.get(cancelKey) === connection) this.cancelKeys.delete(cancelKey);
      if (connection.established) {
        this.active.dec({ kind: route.kind });
        this.opts.signals?.closed(route.assessment);
      } else this.pending.dec();
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
      if (!letTheErrorOut) secure.destroy();
      backend.destroy();
    };
    // The sandbox answered: the handshake deadline is over. A connection that answered but has not
    // logged in (a monitor's hello, a 401 kept alive) may stay only while it is not idle.
    const answer = () => {
      answered = true;
      onEstablished();
      if (!connection.established) secure.setTimeout(this.opts.unauthenticatedIdleMs ?? 30_000);
    };
    secure.on('timeout', () => (connection.established ? secure.destroy() : finish('idle_unauthenticated')));
    const establish = () => {
      connection.established = true;
      this.pending.dec();
      this.active.inc({ kind: route.kind });
      this.opts.signals?.opened(route.assessment, route.sandbox, conn.client, route.uid);
      secure.setTimeout(this.opts.idleTimeoutMs);
      // Checked again now it counts: others may have logged in since this one was routed.
      if (this.count(label, true) > cap) connection.cut(tooMany);
    };
    backend.once('connect', () => {
      secure.on('data', (chunk: Buffer) => {
        up += chunk.length;
        if (login && !connection.established) login.fromClient(chunk);
      });
      backend.on('data', (chunk: Buffer) => {
        down += chunk.length;
        if (watcher) {
          // PostgreSQL: answered and logged in at once, at AuthenticationOk (fed on: atBoundary).
          watcher.feed(chunk);
          if (!connection.established && watcher.authenticated) {
            answer();
            establish();
          }
          if (!cancelKey && watcher.cancelKey && !done) {
            cancelKey = watcher.cancelKey.toString('hex');
            this.cancelKeys.set(cancelKey, connection);
          }
        } else if (!connection.established) {
          if (!answered) answer();
          login!.fromSandbox(chunk);
          if (login!.authenticated) establish();
        }
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
      finish('backend_error', route.kind === 'postgres' && up === 0 && down === 0);
    });
    backend.on('close', () => finish('closed'));
    secure.on('close', () => finish('closed'));
  }

  /**
   * psql's Ctrl-C, in plain text: forwarded to the sandbox whose logged-in session the key names,
   * while its assessment is open; anything else is dropped. Like PostgreSQL, the gateway answers
   * a cancel by closing, whatever happened, so a stranger learns nothing from it.
   */
  private cancel(conn: Conn, socket: Socket, request: Buffer): void {
    socket.end();
    const now = Date.now();
    let counts = this.cancelCounts.get(conn.client);
    if (!counts || now - counts.since >= 60_000) {
      counts = { since: now, misses: 0, all: 0 };
      this.cancelCounts.set(conn.client, counts);
    }
    const target = this.cancelKeys.get(request.toString('hex', 8));
    let result: string;
    if (
      counts.misses >= (this.opts.maxCancelMissesPerMinute ?? 20) ||
      counts.all >= (this.opts.maxCancelsPerMinute ?? 60)
    ) {
      result = 'cancel_limited';
    } else if (!target || 'refused' in this.opts.resolve(target.label)) {
      counts.misses += 1;
      counts.all += 1;
      result = 'cancel_unknown';
    } else {
      counts.all += 1;
      result = 'cancel';
      const backend = connect({ host: target.route.host, port: target.route.port });
      this.track(backend);
      backend.on('error', () => backend.destroy());
      backend.setTimeout(this.opts.handshakeTimeoutMs, () => backend.destroy());
      backend.once('connect', () => backend.end(request));
      backend.resume(); // the server answers a cancel by closing
      conn.log.info(
        { assessment: target.route.assessment, sandbox: target.route.sandbox },
        'query cancel forwarded',
      );
      conn.span.setAttributes({
        'epreuve.assessment': target.route.assessment,
        'epreuve.sandbox': target.route.sandbox,
      });
    }
    const kind = result === 'cancel' ? 'postgres' : 'unknown';
    this.connections.inc({ kind, result });
    conn.span.setAttribute('epreuve.gateway.result', result);
    endSpan(conn.span, result === 'cancel' ? undefined : result);
  }

  private refuse(
    conn: Conn,
    secure: TLSSocket,
    opening: Opening,
    reason: string,
    label: string | undefined,
    told = reason,
  ): void {
    this.connections.inc({ kind: 'unknown', result: 'refused' });
    conn.log.info({ label, reason }, 'sandbox connection refused');
    conn.span.setAttribute('epreuve.gateway.result', 'refused');
    endSpan(conn.span, reason);
    if (opening === 'postgres' || secure.alpnProtocol === 'postgresql') {
      secure.end(pgError('08004', told));
    } else if (secure.alpnProtocol === 'http/1.1') {
      secure.end(httpError(503, told));
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
