import { describe, expect, it } from 'vitest';
import { httpError, pgError } from './server.ts';

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
