import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import corsPlugin from './cors.ts';

const preflight = {
  method: 'OPTIONS' as const,
  url: '/api/v1/thing',
  headers: { origin: 'https://board.example', 'access-control-request-method': 'GET' },
};

async function appWith(origins: string[]) {
  const app = Fastify();
  await app.register(corsPlugin, { origins });
  app.get('/api/v1/thing', async () => ({ ok: true }));
  return app;
}

describe('CORS', () => {
  it('answers a configured origin, preflight included', async () => {
    const app = await appWith(['https://board.example']);
    const res = await app.inject(preflight);
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://board.example');
    const get = await app.inject({ url: '/api/v1/thing', headers: { origin: 'https://board.example' } });
    expect(get.headers['access-control-allow-origin']).toBe('https://board.example');
    const other = await app.inject({ url: '/api/v1/thing', headers: { origin: 'https://evil.example' } });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('with no origin configured, allows none: no header, and a preflight is a 404', async () => {
    const app = await appWith([]);
    const res = await app.inject(preflight);
    expect(res.statusCode).toBe(404);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const get = await app.inject({ url: '/api/v1/thing', headers: { origin: 'https://board.example' } });
    expect(get.statusCode).toBe(200);
    expect(get.headers['access-control-allow-origin']).toBeUndefined();
  });
});
