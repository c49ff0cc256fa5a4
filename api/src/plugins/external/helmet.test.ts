import Fastify from 'fastify';
import helmet from 'helmet';
import { describe, expect, it } from 'vitest';
import helmetPlugin, { recordHeaders } from './helmet.ts';

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
      helmet({
        contentSecurityPolicy: {
          directives: {
            defaultSrc: ["'self'"],
            scriptSrc: ["'self'"],
            styleSrc: ["'self'"],
            imgSrc: ["'self'", 'data:'],
            upgradeInsecureRequests: null,
          },
        },
      })(request.raw, reply.raw, (err) => done(err as Error | undefined));
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

  it('refuses to start when the middleware fails on its recording response', () => {
    expect(() =>
      recordHeaders(((_req: unknown, _res: unknown, next: (e?: Error) => void) =>
        next(new Error('bad directive'))) as never),
    ).toThrow('bad directive');
  });
});
