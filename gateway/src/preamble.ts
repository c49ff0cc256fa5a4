/**
 * What a connection says before TLS, decided from the bytes alone (pure, so every hostile shape
 * is a unit test): PostgreSQL's 8-byte SSLRequest / GSSENCRequest, a TLS ClientHello, or
 * something the gateway refuses. Every complete request in the buffer is consumed at once, so a
 * client streaming requests cannot make the gateway re-buffer (the first version handled one per
 * chunk and grew without bound), and the number of GSSENC requests is capped: libpq sends one.
 */

/**
 * PostgreSQL's pre-TLS requests (protocol codes): SSLRequest, GSSENCRequest, CancelRequest and a
 * plain startup.
 */
const PG_SSL_REQUEST = 80877103;
const PG_CANCEL_REQUEST = 80877102;
/** A protocol 3.0 CancelRequest: length, code, then the session's process id and secret key. */
const PG_CANCEL_LENGTH = 16;
const PG_GSSENC_REQUEST = 80877104;
const PG_PROTOCOL_3 = 196608;
const TLS_HANDSHAKE = 0x16;
/** libpq sends at most one GSSENCRequest per connection; a second one is not a client. */
export const MAX_GSSENC_REQUESTS = 1;

export type Preamble =
  /** Need more bytes (never more than 15 are kept: an incomplete CancelRequest). */
  | { kind: 'more'; rest: Buffer; gssenc: number; replies: string }
  /** Start TLS; `rest` is what follows (the ClientHello's first bytes) and `replies` goes first. */
  | { kind: 'tls'; opening: 'postgres' | 'tls'; rest: Buffer; replies: string }
  /**
   * psql's Ctrl-C: libpq sends its CancelRequest in plain text on a new connection (no TLS, so no
   * host name to route on). `request` is the whole 16 bytes, forwarded as they came; its last 8
   * (process id, secret) are the key the session was given.
   */
  | { kind: 'cancel'; request: Buffer }
  | { kind: 'refuse'; why: 'plaintext_postgres' | 'plaintext_http' | 'gssenc_flood' | 'not_tls' };

/**
 * Consumes `buffer` (what arrived so far after earlier decisions) given how many GSSENC requests
 * were already answered. `replies` are the bytes to write back ('N' per GSSENC, 'S' per SSL).
 */
export function readPreamble(buffer: Buffer, gssencSoFar = 0): Preamble {
  let offset = 0;
  let gssenc = gssencSoFar;
  let replies = '';
  while (true) {
    const rest = buffer.subarray(offset);
    if (rest.length === 0) return { kind: 'more', rest, gssenc, replies };
    if (rest[0] === TLS_HANDSHAKE) return { kind: 'tls', opening: 'tls', rest, replies };
    if (rest.length < 8) return { kind: 'more', rest, gssenc, replies };
    const length = rest.readInt32BE(0);
    const code = rest.readInt32BE(4);
    if (length === 8 && code === PG_SSL_REQUEST) {
      return { kind: 'tls', opening: 'postgres', rest: rest.subarray(8), replies: `${replies}S` };
    }
    if (length === PG_CANCEL_LENGTH && code === PG_CANCEL_REQUEST) {
      if (rest.length < PG_CANCEL_LENGTH) return { kind: 'more', rest, gssenc, replies };
      // Nothing may follow it: a cancel connection carries the request and is closed.
      if (offset > 0 || rest.length > PG_CANCEL_LENGTH) return { kind: 'refuse', why: 'not_tls' };
      return { kind: 'cancel', request: Buffer.from(rest) };
    }
    if (length === 8 && code === PG_GSSENC_REQUEST) {
      if (gssenc >= MAX_GSSENC_REQUESTS) return { kind: 'refuse', why: 'gssenc_flood' };
      // No GSS encryption here: libpq then falls back to an SSLRequest on the same socket.
      gssenc += 1;
      replies += 'N';
      offset += 8;
      continue;
    }
    if (code === PG_PROTOCOL_3) return { kind: 'refuse', why: 'plaintext_postgres' };
    if (/^[A-Z]+ /.test(rest.toString('latin1', 0, 8))) return { kind: 'refuse', why: 'plaintext_http' };
    return { kind: 'refuse', why: 'not_tls' };
  }
}

/**
 * Follows PostgreSQL's backend→client stream message by message (hand-written: no library frames
 * a proxied stream without buffering it, and this keeps no bytes — only how much of the current
 * message is left to skip, and a header split across chunks). It tells two things:
 * - `authenticated`: AuthenticationOk ('R', length 8, code 0) has gone by. Only then is the
 *   connection the candidate's, counted against their own cap; until then it is pending (a
 *   stranger who cannot log in, or a silent client, holds a pending slot at most until the
 *   handshake deadline).
 * - `atBoundary`: no message is half-sent, so the gateway may append an ErrorResponse that psql
 *   prints (at expiry) without corrupting the stream.
 * - `cancelKey`: the BackendKeyData ('K', length 12: process id and secret) sent after the login,
 *   which psql's Ctrl-C sends back in plain text; the gateway routes that CancelRequest by it.
 */
export class PostgresStreamWatcher {
  private header = Buffer.alloc(0);
  private skip = 0;
  authenticated = false;
  cancelKey?: Buffer;

  /** Feeds backend→client bytes; returns true once AuthenticationOk has gone by. */
  feed(chunk: Buffer): boolean {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - offset);
        this.skip -= n;
        offset += n;
        continue;
      }
      // The header is type (1) + length (4), then the auth code (4) for an 'R' of length 8, or
      // the key (8) for the first 'K' of length 12 once logged in.
      const isAuthCode =
        this.header.length >= 5 && this.header[0] === 0x52 && this.header.readInt32BE(1) === 8;
      const isKey =
        this.header.length >= 5 &&
        this.authenticated &&
        !this.cancelKey &&
        this.header[0] === 0x4b &&
        this.header.readInt32BE(1) === 12;
      const need = (isAuthCode ? 9 : isKey ? 13 : 5) - this.header.length;
      const take = chunk.subarray(offset, offset + need);
      this.header = Buffer.concat([this.header, take]);
      offset += take.length;
      if (this.header.length < 5) continue;
      const length = this.header.readInt32BE(1);
      if (this.header[0] === 0x52 && length === 8) {
        if (this.header.length < 9) continue;
        if (this.header.readInt32BE(5) === 0) this.authenticated = true;
        this.header = Buffer.alloc(0);
        continue;
      }
      if (this.header[0] === 0x4b && length === 12 && this.authenticated && !this.cancelKey) {
        if (this.header.length < 13) continue;
        this.cancelKey = Buffer.from(this.header.subarray(5, 13));
        this.header = Buffer.alloc(0);
        continue;
      }
      // Any other message: skip its body (the length counts itself, not the type byte).
      this.skip = Math.max(0, length - 4);
      this.header = Buffer.alloc(0);
    }
    return this.authenticated;
  }

  get atBoundary(): boolean {
    return this.skip === 0 && this.header.length === 0;
  }
}
