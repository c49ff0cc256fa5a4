/** The data API's Prometheus metrics: counted as the reviewer log leaves requests out, served on the admin server only. */
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from './app.ts';
import { data } from './fixtures.test-helpers.ts';

const KEY = 'unit-test-api-key-0123';
const ADMIN = 'unit-test-admin-key-0123';

const apps: Array<ReturnType<typeof buildApp>> = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});
const build = (separateAdmin: boolean) => {
  const a = buildApp(
    { apiKey: KEY, adminKey: ADMIN, rateLimitPerMinute: 2, wrongKeysPerMinute: 2 },
    { data, separateAdmin, clock: () => 1_000_000 },
  );
  apps.push(a);
  return a;
};

/** `name{labels} value` lines of the exposition, as a map. */
const samples = (text: string) =>
  Object.fromEntries(
    text
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => {
        const i = l.lastIndexOf(' ');
        return [l.slice(0, i), Number(l.slice(i + 1))];
      }),
  );

describe('data API metrics', () => {
  it('count each rejected request by reason and the candidate’s rate-limited ones, on the admin server', async () => {
    const a = build(true);
    const admin = a.adminServer;
    const before = samples((await admin.inject({ url: '/metrics' })).body);
    // Every reason is there from the start, at 0.
    expect(before).toEqual({
      'epreuve_data_api_rejected_requests_total{reason="missing_key"}': 0,
      'epreuve_data_api_rejected_requests_total{reason="invalid_key"}': 0,
      'epreuve_data_api_rejected_requests_total{reason="throttled"}': 0,
      'epreuve_data_api_rejected_requests_total{reason="anonymous"}': 0,
      epreuve_data_api_rate_limited_total: 0,
    });

    expect((await a.inject({ url: '/v1/customers/1' })).statusCode).toBe(401);
    expect(
      (await a.inject({ url: '/v1/customers/1', headers: { 'x-api-key': 'wrong-key-0123456789' } }))
        .statusCode,
    ).toBe(401);
    // Past WRONG_KEYS_PER_MINUTE (2), strangers are throttled.
    expect(
      (await a.inject({ url: '/v1/customers/1', headers: { 'x-api-key': 'guess-0123456789' } })).statusCode,
    ).toBe(429);
    expect((await a.inject({ url: '/docs' })).statusCode).toBe(200);
    // The candidate's own key: 2 a minute, the third is a 429 (in the reviewer log, and counted).
    for (const status of [200, 200, 429])
      expect((await a.inject({ url: '/v1/customers/1', headers: { 'x-api-key': KEY } })).statusCode).toBe(
        status,
      );

    const res = await admin.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(samples(res.body)).toEqual({
      'epreuve_data_api_rejected_requests_total{reason="missing_key"}': 1,
      'epreuve_data_api_rejected_requests_total{reason="invalid_key"}': 1,
      'epreuve_data_api_rejected_requests_total{reason="throttled"}': 1,
      'epreuve_data_api_rejected_requests_total{reason="anonymous"}': 1,
      epreuve_data_api_rate_limited_total: 1,
    });
    // The reviewer log's own tally agrees.
    const log = await admin.inject({ url: '/admin/requests', headers: { 'x-admin-key': ADMIN } });
    expect(log.json().rejected).toEqual({ missing_key: 1, invalid_key: 1, throttled: 1, anonymous: 1 });
  });

  it('are never served on the candidates’ port (the one the gateway routes)', async () => {
    for (const a of [build(true), build(false)]) {
      const res = await a.inject({ url: '/metrics' });
      expect(res.statusCode).toBe(404);
      expect(res.body).not.toContain('epreuve_data_api');
    }
  });
});
