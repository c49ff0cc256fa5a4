import { describe, expect, it } from 'vitest';
import { clientKey, httpError, pgError } from './server.ts';

describe('refusals in the client’s own protocol', () => {
  it('pgError is a PostgreSQL ErrorResponse psql prints as FATAL with the code and message', () => {
    const message = 'this assessment ended at 2026-11-22T20:00:00Z — désolé';
    const frame = pgError('08004', message);
    expect(frame.toString('latin1', 0, 1)).toBe('E');
    // The length counts itself and every field, not the type byte.
    expect(frame.readInt32BE(1)).toBe(frame.length - 1);
    const fields = frame.subarray(5, -1).toString('utf8').split('\0').filter(Boolean);
    expect(fields).toEqual(['SFATAL', 'VFATAL', 'C08004', `M${message}`]);
    expect(frame.at(-1)).toBe(0);
  });

  it('httpError is a complete problem+json response that closes the connection', () => {
    const response = httpError(503, 'this sandbox is still starting; try again in a minute');
    const [head, body] = response.split('\r\n\r\n') as [string, string];
    expect(head.split('\r\n')[0]).toBe('HTTP/1.1 503 Service Unavailable');
    expect(head).toMatch(/\r\nconnection: close(\r\n|$)/);
    expect(head).toContain(`content-length: ${Buffer.byteLength(body)}`);
    expect(JSON.parse(body)).toEqual({
      title: 'this sandbox is still starting; try again in a minute',
      status: 503,
    });
    expect(httpError(400, 'x').split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
  });
});

describe('clientKey (what per-address caps count)', () => {
  it('is an IPv4 address as itself, mapped or not', () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
  });

  it('groups IPv6 clients by /64: one host holds a whole /64, so per-/128 caps would be none', () => {
    const a = clientKey('2001:db8:1:2::1');
    expect(a).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:0DB8:0001:0002:ffff:ffff:ffff:fffe')).toBe(a);
    expect(clientKey('2001:db8:1:3::1')).not.toBe(a);
  });

  it('is "unknown" for a missing or unparsable address', () => {
    expect(clientKey(undefined)).toBe('unknown');
    expect(clientKey('not-an-address')).toBe('unknown');
  });
});
