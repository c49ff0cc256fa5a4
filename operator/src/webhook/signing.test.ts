import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { signatureHeaders } from './signing.ts';

const key = Buffer.from('0123456789abcdef0123456789abcdef');
const secret = `whsec_${key.toString('base64')}`;

describe('webhook signing', () => {
  const at = new Date('2026-11-30T12:00:00Z');
  const body = '{"specversion":"1.0","id":"u.ready"}';

  it('is HMAC-SHA256 over id.timestamp.body, base64, as v1,<sig>', () => {
    const h = signatureHeaders(secret, 'u.ready', at, body);
    expect(h['webhook-id']).toBe('u.ready');
    expect(h['webhook-timestamp']).toBe('1796040000');
    const expected = createHmac('sha256', key).update(`u.ready.1796040000.${body}`).digest('base64');
    expect(h['webhook-signature']).toBe(`v1,${expected}`);
  });

  it('verifies with the receiver-side library, and fails with another secret or body', () => {
    const now = new Date();
    const h = signatureHeaders(secret, 'u.ready', now, body);
    expect(new Webhook(secret).verify(body, h)).toEqual(JSON.parse(body));
    const other = `whsec_${Buffer.from('another secret of 32 bytes......').toString('base64')}`;
    expect(() => new Webhook(other).verify(body, h)).toThrow(/No matching signature/);
    expect(() => new Webhook(secret).verify(`${body} `, h)).toThrow(/No matching signature/);
  });

  it('names a missing secret', () => {
    expect(() => signatureHeaders('', 'id', at, body)).toThrow(
      'the endpoint Secret has no signing secret (key `secret`)',
    );
  });

  it('names a bad secret without echoing it', () => {
    expect(() => signatureHeaders('whsec_not*base64!', 'id', at, body)).toThrow(
      'the signing secret is not base64 (expected whsec_<base64>)',
    );
  });
});
