import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import helmetPlugin, { apiHelmet, pageHelmet, recordHeaders } from './helmet.ts';

describe('helmet plugin', () => {
  it('sends the headers helmet itself sets on a response, on every response', async () => {
    const app = Fastify();
    await app.register(helmetPlugin);
    app.get('/json', async () => ({ ok: true }));
    app.get('/boom', async () => {
      throw new Error('boom');
    });
    const withHelmet = Fastify();
    withHelmet.addHook('onRequest', (request, reply, done) => {
      pageHelmet()(request.raw, reply.raw, (err) => done(err as Error | undefined));
    });
    withHelmet.get('/json', async () => ({ ok: true }));
    const security = (h: Record<string, unknown>) => {
      const { date: _d, 'content-length': _l, 'content-type': _t, connection: _c, ...rest } = h;
      return rest;
    };
    const expected = security((await withHelmet.inject('/json')).headers);
    expect(Object.keys(expected)).toHaveLength(12);
    expect(security((await app.inject('/json')).headers)).toEqual(expected);
    const failed = await app.inject('/boom');
    expect(failed.statusCode).toBe(500);
    expect(security(failed.headers)).toEqual(expected);
  });

  it('sends the API set (OWASP REST: HSTS, nosniff, framing refused) on /api/ responses, errors and 404s too', async () => {
    const app = Fastify();
    await app.register(helmetPlugin);
    app.get('/api/v1/thing', async () => ({ ok: true }));
    app.get('/api/v1/boom', async () => {
      throw new Error('boom');
    });
    app.get('/page', async () => 'html');
    const api = {
      'content-security-policy': "default-src 'none';frame-ancestors 'none'",
      'strict-transport-security': 'max-age=31536000; includeSubDomains',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
    };
    const security = (h: Record<string, unknown>) =>
      Object.fromEntries(
        Object.entries(h).filter(
          ([k]) => !['date', 'content-length', 'content-type', 'connection'].includes(k),
        ),
      );
    for (const [url, status] of [
      ['/api/v1/thing', 200],
      ['/api/v1/boom', 500],
      ['/api/v1/nowhere', 404],
    ] as const) {
      const res = await app.inject(url);
      expect(res.statusCode, url).toBe(status);
      expect(security(res.headers), url).toEqual(api);
    }
    // Anything else, a page or a path that only decodes to /api/, gets helmet's whole set.
    expect(recordHeaders(apiHelmet())).toEqual(api);
    const page = recordHeaders(pageHelmet());
    expect(Object.keys(page)).toHaveLength(12);
    expect(security((await app.inject('/page')).headers)).toEqual(page);
    expect(security((await app.inject('/%61pi/v1/thing')).headers)).toEqual(page);
  });

  it('refuses to start when the middleware fails on its recording response', () => {
    expect(() =>
      recordHeaders(((_req: unknown, _res: unknown, next: (e?: Error) => void) =>
        next(new Error('bad directive'))) as never),
    ).toThrow('bad directive');
  });
});
