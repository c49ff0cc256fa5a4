import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startApi } from '../harness/api.ts';
import { createTestNamespace } from '../harness/kube.ts';
import { TestIssuer } from '../harness/oidc.ts';

/**
 * Guessing credentials costs the guesser (issue 15, item 3), on the real API against the real API
 * server: failed authentications are counted per client address and route family, and further
 * failures from there are refused with 429 — a valid credential is always checked first and
 * passes, so a stranger sharing the address locks no one out (test/integration/api-attacks.test.ts); the address is the peer's unless a configured proxy names it; the
 * per-minute rate limit is keyed by the principal a credential proved, so junk tokens mint no
 * fresh buckets. Each case fails on the API as it was (401s were free, X-Forwarded-For was
 * believed from anyone, and the limit was keyed on the last 32 characters of any header).
 */
const kubeconfig = inject('kubeconfig');
const issuer = new TestIssuer();
const KEY = 'epk_brute-force-tests-key-0123456789abcdef';
let team: string;
const apis: Array<Awaited<ReturnType<typeof startApi>>> = [];

async function apiWith(env: Record<string, string>): Promise<FastifyInstance> {
  const api = await startApi(kubeconfig, { issuer, apiKey: KEY, apiKeyTeams: [team], env });
  apis.push(api);
  return api.app;
}

const list = (app: FastifyInstance, token: string, from: string, headers: Record<string, string> = {}) =>
  app.inject({
    method: 'GET',
    url: `/api/v1/teams/${team}/assessments`,
    headers: { authorization: `Bearer ${token}`, ...headers },
    remoteAddress: from,
  });

beforeAll(async () => {
  await issuer.start();
  team = await createTestNamespace(kubeconfig, 'team-bf');
});

afterAll(async () => {
  for (const api of apis) await api.stop();
  await issuer.stop();
});

describe('brute force', () => {
  it('refuses an address’s further failures with 429 + Retry-After after 5 failed keys; the right key still passes', async () => {
    const app = await apiWith({ EPREUVE_AUTH_FAILURES_PER_MINUTE: '5' });
    for (let i = 0; i < 5; i++) {
      const res = await list(app, `epk_wrong-guess-${i}-0123456789abcdefghij`, '203.0.113.7');
      expect(res.statusCode).toBe(401);
      expect(res.json().detail).toBe('invalid credentials');
    }
    const blocked = await list(app, 'epk_wrong-guess-5-0123456789abcdefghij', '203.0.113.7');
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    expect(blocked.json().detail).toMatch(/too many failed authentications from this address/);
    expect((await list(app, KEY, '203.0.113.7')).statusCode).toBe(200);
    expect((await list(app, 'epk_wrong-guess-6-0123456789abcdefghij', '198.51.100.9')).statusCode).toBe(401);
    const metrics = await app.metricsRegistry.metrics();
    expect(metrics).toMatch(/epreuve_api_auth_failures_total\{status="401"\} 6/);
    expect(metrics).toMatch(/epreuve_api_auth_failures_total\{status="429"\} 1/);
  });

  it('counts 403s too (a real token probing other teams)', async () => {
    const app = await apiWith({ EPREUVE_AUTH_FAILURES_PER_MINUTE: '3' });
    const outsider = await issuer.token({
      sub: 'prober@example.com',
      epreuve_roles: ['recruiter'],
      epreuve_teams: ['another-team'],
    });
    for (let i = 0; i < 3; i++) expect((await list(app, outsider, '203.0.113.8')).statusCode).toBe(403);
    expect((await list(app, outsider, '203.0.113.8')).statusCode).toBe(429);
  });

  it('ignores X-Forwarded-For from a peer that is not a configured proxy', async () => {
    const app = await apiWith({ EPREUVE_AUTH_FAILURES_PER_MINUTE: '3' });
    for (let i = 0; i < 3; i++) {
      const res = await list(app, `epk_wrong-guess-${i}-0123456789abcdefghij`, '203.0.113.9', {
        'x-forwarded-for': `192.0.2.${i}`,
      });
      expect(res.statusCode).toBe(401);
    }
    const res = await list(app, 'epk_wrong-guess-9-0123456789abcdefghij', '203.0.113.9', {
      'x-forwarded-for': '192.0.2.200',
    });
    expect(res.statusCode).toBe(429);
  });

  it('believes X-Forwarded-For from a configured proxy: clients behind it are counted apart', async () => {
    const app = await apiWith({
      EPREUVE_AUTH_FAILURES_PER_MINUTE: '2',
      EPREUVE_TRUSTED_PROXIES: '10.0.0.0/8',
    });
    for (let i = 0; i < 2; i++) {
      await list(app, `epk_wrong-guess-${i}-0123456789abcdefghij`, '10.1.2.3', {
        'x-forwarded-for': '192.0.2.1',
      });
    }
    const wrong = 'epk_wrong-guess-9-0123456789abcdefghij';
    expect((await list(app, wrong, '10.1.2.3', { 'x-forwarded-for': '192.0.2.1' })).statusCode).toBe(429);
    expect((await list(app, wrong, '10.1.2.3', { 'x-forwarded-for': '192.0.2.2' })).statusCode).toBe(401);
  });

  it('refuses a staff API key shorter than 128 bits, as invalid credentials, whatever is configured', async () => {
    const short = 'epk_short-key-0123';
    const api = await startApi(kubeconfig, { issuer, apiKey: short, apiKeyTeams: [team] });
    apis.push(api);
    const res = await list(api.app, short, '203.0.113.10');
    expect(res.statusCode).toBe(401);
    expect(res.json().detail).toBe('invalid credentials');
  });

  it('never tells a prober which JWT check failed', async () => {
    const app = await apiWith({});
    const forged = `${(await issuer.token({ sub: 'x', epreuve_roles: ['admin'], epreuve_teams: [team] })).slice(0, -4)}AAAA`;
    const res = await list(app, forged, '203.0.113.11');
    expect(res.statusCode).toBe(401);
    expect(res.json().detail).toBe('invalid credentials');
    const expired = await issuer.token(
      { sub: 'x', epreuve_roles: ['admin'], epreuve_teams: [team] },
      { expiresIn: '-1m' },
    );
    expect((await list(app, expired, '203.0.113.11')).json().detail).toBe(
      'invalid credentials: the token has expired',
    );
  });

  it('keys the per-minute limit by principal: a staff member’s budget is theirs, whatever address they use', async () => {
    const app = await apiWith({ EPREUVE_RATE_LIMIT_PER_MINUTE: '4' });
    const token = await issuer.token({
      sub: 'busy@example.com',
      epreuve_roles: ['recruiter'],
      epreuve_teams: [team],
    });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await list(app, token, `198.51.100.${i + 1}`)).statusCode);
    expect(statuses).toEqual([200, 200, 200, 200, 429]);
    const colleague = await issuer.token({
      sub: 'calm@example.com',
      epreuve_roles: ['recruiter'],
      epreuve_teams: [team],
    });
    expect((await list(app, colleague, '198.51.100.1')).statusCode).toBe(200);
  });
});
