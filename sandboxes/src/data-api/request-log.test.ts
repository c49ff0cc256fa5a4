/** Unit tests for request-log.ts: the ring buffer and URL redaction. */
import { describe, expect, it } from 'vitest';
import { RingBuffer, redactUrl } from './request-log.ts';

describe('RingBuffer', () => {
  it('keeps the last `capacity` items, oldest first', () => {
    const r = new RingBuffer<number>(3);
    expect(r.toArray()).toEqual([]);
    for (let i = 1; i <= 2; i++) r.push(i);
    expect(r.toArray()).toEqual([1, 2]);
    for (let i = 3; i <= 7; i++) r.push(i);
    expect(r.toArray()).toEqual([5, 6, 7]);
  });
});

describe('redactUrl', () => {
  it('hides secret-looking parameters and any known secret', () => {
    expect(redactUrl('/v1/x?limit=5&api_key=abc&Token=def', [])).toBe(
      '/v1/x?limit=5&api_key=REDACTED&Token=REDACTED',
    );
    expect(redactUrl('/v1/x?q=s3cr%2Ft&k=s3cr/t', ['s3cr/t'])).toBe('/v1/x?q=REDACTED&k=REDACTED');
    expect(redactUrl('/v1/customers?cursor=abc', ['secret'])).toBe('/v1/customers?cursor=abc');
  });
});
