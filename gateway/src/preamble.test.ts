import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PostgresStreamWatcher, readPreamble } from './preamble.ts';

const request = (code: number) => {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(code, 4);
  return b;
};
const SSL = request(80877103);
const GSSENC = request(80877104);
const CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]);

describe('readPreamble (what arrives before TLS)', () => {
  it('answers libpq’s GSSENC then SSL requests in one chunk, keeping the ClientHello that follows', () => {
    const preamble = readPreamble(Buffer.concat([GSSENC, SSL, CLIENT_HELLO]));
    expect(preamble).toEqual({ kind: 'tls', opening: 'postgres', rest: CLIENT_HELLO, replies: 'NS' });
  });

  it('starts TLS at once on a ClientHello (MongoDB, HTTPS, libpq direct TLS)', () => {
    expect(readPreamble(CLIENT_HELLO)).toMatchObject({ kind: 'tls', opening: 'tls', rest: CLIENT_HELLO });
  });

  it('keeps at most 7 bytes while a request is incomplete, across chunks', () => {
    const first = readPreamble(SSL.subarray(0, 5));
    expect(first).toMatchObject({ kind: 'more', gssenc: 0 });
    if (first.kind !== 'more') throw new Error('unreachable');
    expect(first.rest.length).toBe(5);
    expect(readPreamble(Buffer.concat([first.rest, SSL.subarray(5)]), first.gssenc)).toMatchObject({
      kind: 'tls',
      opening: 'postgres',
      replies: 'S',
    });
  });

  it('refuses a second GSSENC request, in the same chunk or a later one (the flood that OOM-killed the gateway)', () => {
    expect(readPreamble(Buffer.concat([GSSENC, GSSENC]))).toEqual({ kind: 'refuse', why: 'gssenc_flood' });
    const first = readPreamble(GSSENC);
    expect(first).toMatchObject({ kind: 'more', gssenc: 1, replies: 'N' });
    expect(readPreamble(GSSENC, 1)).toEqual({ kind: 'refuse', why: 'gssenc_flood' });
    // 64 MiB of GSSENC requests are decided on the first 16 bytes.
    const flood = Buffer.concat(Array.from({ length: 1024 }, () => GSSENC));
    expect(readPreamble(flood)).toEqual({ kind: 'refuse', why: 'gssenc_flood' });
  });

  it('reads psql’s plaintext CancelRequest whole, across chunks, and refuses one with bytes after it', () => {
    const cancel = Buffer.alloc(16);
    cancel.writeInt32BE(16, 0);
    cancel.writeInt32BE(80877102, 4);
    cancel.writeInt32BE(4242, 8);
    cancel.writeInt32BE(-123456789, 12);
    expect(readPreamble(cancel)).toEqual({ kind: 'cancel', request: cancel });
    const first = readPreamble(cancel.subarray(0, 11));
    expect(first).toMatchObject({ kind: 'more' });
    if (first.kind !== 'more') throw new Error('unreachable');
    expect(readPreamble(Buffer.concat([first.rest, cancel.subarray(11)]))).toEqual({
      kind: 'cancel',
      request: cancel,
    });
    expect(readPreamble(Buffer.concat([cancel, SSL]))).toEqual({ kind: 'refuse', why: 'not_tls' });
    expect(readPreamble(Buffer.concat([GSSENC, cancel]))).toEqual({ kind: 'refuse', why: 'not_tls' });
  });

  it('refuses plaintext PostgreSQL, plain HTTP and random bytes, naming which', () => {
    const startup = Buffer.alloc(8);
    startup.writeInt32BE(40, 0);
    startup.writeInt32BE(196608, 4);
    expect(readPreamble(startup)).toEqual({ kind: 'refuse', why: 'plaintext_postgres' });
    expect(readPreamble(Buffer.from('GET / HTTP/1.1\r\n'))).toEqual({
      kind: 'refuse',
      why: 'plaintext_http',
    });
    expect(readPreamble(Buffer.from('\x00\x00\x00\x09garbage'))).toEqual({ kind: 'refuse', why: 'not_tls' });
  });

  it('never throws and always decides within 8 bytes on random input', () => {
    for (let i = 0; i < 2000; i++) {
      const bytes = randomBytes(1 + (i % 64));
      if (bytes[0] === 0x16) continue;
      const preamble = readPreamble(bytes);
      if (bytes.length >= 8) expect(preamble.kind).not.toBe('more');
    }
  });
});

/** A backend message: type, int32 length (counting itself), body. */
const message = (type: string, body: Buffer) => {
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
};
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n, 0);
  return b;
};
const SASL = message('R', Buffer.concat([int32(10), Buffer.from('SCRAM-SHA-256\0\0')]));
const SASL_CONTINUE = message('R', Buffer.concat([int32(11), Buffer.from('r=abc,s=def,i=4096')]));
const AUTH_OK = message('R', int32(0));
const CLEARTEXT = message('R', int32(3));
const PARAMETER = message('S', Buffer.from('server_version\x0017.0\0'));
const READY = message('Z', Buffer.from('I'));
const EMPTY_QUERY = message('I', Buffer.alloc(0));

describe('PostgresStreamWatcher (the backend’s answer to a login)', () => {
  it('is authenticated only once AuthenticationOk goes by, after SASL', () => {
    const watcher = new PostgresStreamWatcher();
    expect(watcher.feed(SASL)).toBe(false);
    expect(watcher.feed(SASL_CONTINUE)).toBe(false);
    expect(watcher.feed(Buffer.concat([AUTH_OK, PARAMETER, READY]))).toBe(true);
    expect(watcher.atBoundary).toBe(true);
  });

  it('is not fooled by a password request, an error, or AuthenticationOk bytes inside another message', () => {
    const watcher = new PostgresStreamWatcher();
    expect(watcher.feed(CLEARTEXT)).toBe(false);
    const error = message('E', Buffer.concat([Buffer.from('SFATAL\0'), AUTH_OK, Buffer.from('\0')]));
    expect(watcher.feed(error)).toBe(false);
  });

  it('follows messages split at every byte, including empty ones', () => {
    const stream = Buffer.concat([SASL, EMPTY_QUERY, SASL_CONTINUE, AUTH_OK, PARAMETER, READY]);
    const watcher = new PostgresStreamWatcher();
    let authenticatedAt = -1;
    for (let i = 0; i < stream.length; i++) {
      if (watcher.feed(stream.subarray(i, i + 1)) && authenticatedAt < 0) authenticatedAt = i;
    }
    expect(authenticatedAt).toBe(
      SASL.length + EMPTY_QUERY.length + SASL_CONTINUE.length + AUTH_OK.length - 1,
    );
    expect(watcher.atBoundary).toBe(true);
  });

  it('keeps the BackendKeyData sent after the login, split at every byte, and only that one', () => {
    const key = Buffer.from([0, 0, 0x10, 0x92, 0xde, 0xad, 0xbe, 0xef]);
    const before = message('K', Buffer.alloc(8, 7)); // before AuthenticationOk: not the session's
    const stream = Buffer.concat([before, SASL, AUTH_OK, PARAMETER, message('K', key), READY]);
    const watcher = new PostgresStreamWatcher();
    for (let i = 0; i < stream.length; i++) watcher.feed(stream.subarray(i, i + 1));
    expect(watcher.cancelKey).toEqual(key);
    expect(watcher.atBoundary).toBe(true);
    watcher.feed(message('K', Buffer.alloc(8, 9))); // a later one changes nothing
    expect(watcher.cancelKey).toEqual(key);
  });

  it('knows when a message is half-sent (no ErrorResponse may be appended then)', () => {
    const watcher = new PostgresStreamWatcher();
    watcher.feed(Buffer.concat([AUTH_OK, READY]));
    const row = message('D', Buffer.alloc(1000));
    watcher.feed(row.subarray(0, 300));
    expect(watcher.atBoundary).toBe(false);
    watcher.feed(row.subarray(300));
    expect(watcher.atBoundary).toBe(true);
    watcher.feed(row.subarray(0, 3));
    expect(watcher.atBoundary).toBe(false);
  });
});
