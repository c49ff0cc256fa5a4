import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiLogger } from './logger.ts';
import observabilityPlugin from './plugins/app/observability.ts';

const lines: string[] = [];
const log = createApiLogger(
  'info',
  new Writable({
    write(chunk, _enc, cb) {
      lines.push(...chunk.toString().trim().split('\n'));
      cb();
    },
  }),
);
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  // As app.ts: fastify's own request lines off, observability's "request completed" instead.
  app = Fastify({
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
  }) as unknown as FastifyInstance;
  await app.register(observabilityPlugin, {});
  app.get('/things', async (request) => {
    // What a careless line might log: the fastify request, node's, their headers under `req`.
    request.log.info({ req: request }, 'fastify request');
    request.log.info({ req: request.raw }, 'raw request');
    log.info({ req: { method: 'GET', headers: request.headers } }, 'headers under req');
    return { ok: true };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(() => app.close());

describe('the API logger', () => {
  it('writes the request’s fields under req, never a header: no bearer token, no cookie', async () => {
    const res = await fetch(`${url}/things?x=1`, {
      headers: { authorization: 'Bearer s3cret-token', cookie: 'session=c00kie', 'accept-version': '1' },
    });
    expect(res.status).toBe(200);
    for (let i = 0; i < 50 && !lines.some((l) => l.includes('request completed')); i++)
      await new Promise((r) => setTimeout(r, 10));
    const byMsg = Object.fromEntries(lines.map((l) => JSON.parse(l)).map((l) => [l.msg, l]));
    const fields = {
      method: 'GET',
      url: '/things?x=1',
      host: new URL(url).host,
      remoteAddress: '127.0.0.1',
      remotePort: expect.any(Number),
    };
    expect(byMsg['request completed'].req).toEqual(fields);
    expect(byMsg['fastify request'].req).toEqual(fields);
    expect(byMsg['raw request'].req).toMatchObject({ method: 'GET', url: '/things?x=1' });
    expect(byMsg['headers under req'].req).toEqual({ method: 'GET' });
    for (const line of lines) expect(line).not.toMatch(/s3cret-token|c00kie|authorization|cookie/i);
  });
});
