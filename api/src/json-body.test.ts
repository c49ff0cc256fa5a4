import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH, nestsDeeperThan, registerJsonParser } from './json-body.ts';

const nested = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;

describe('nestsDeeperThan', () => {
  it('counts arrays and objects, up to the limit and one past it', () => {
    expect(nestsDeeperThan(nested(64), 64)).toBe(false);
    expect(nestsDeeperThan(nested(65), 64)).toBe(true);
    expect(nestsDeeperThan('{"a":{"b":[1,{"c":2}]}}', 4)).toBe(false);
    expect(nestsDeeperThan('{"a":{"b":[1,{"c":2}]}}', 3)).toBe(true);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(nestsDeeperThan(`{"q":"${'['.repeat(1000)}"}`, 1)).toBe(false);
    expect(nestsDeeperThan(`{"q":"a\\"${'{'.repeat(10)}"}`, 1)).toBe(false);
    expect(nestsDeeperThan(`{"q":"a\\\\","r":[[1]]}`, 2)).toBe(true);
  });
});

describe('the JSON body parser', () => {
  const app = Fastify();
  registerJsonParser(app);
  app.setErrorHandler((err: Error & { statusCode?: number; field?: string }, _request, reply) =>
    reply.code(err.statusCode ?? 400).send({ message: err.message, field: err.field }),
  );
  app.post('/x', async (request) => request.body);
  const post = (payload: string) =>
    app.inject({ method: 'POST', url: '/x', headers: { 'content-type': 'application/json' }, payload });

  it('refuses a body nested deeper than the limit, naming the body', async () => {
    const res = await post(`{"x":${nested(MAX_JSON_DEPTH)}}`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toEqual({
      message: `the body nests JSON deeper than ${MAX_JSON_DEPTH} levels`,
      field: 'body',
    });
  });

  it('parses a body at the limit as before', async () => {
    const res = await post(`{"x":${nested(MAX_JSON_DEPTH - 1)}}`);
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe(`{"x":${nested(MAX_JSON_DEPTH - 1)}}`);
  });

  it('keeps the default parser’s refusals: empty bodies, bad JSON, __proto__', async () => {
    expect((await post('')).json().message).toMatch(/empty/i);
    expect((await post('{"a":')).statusCode).toBe(400);
    expect((await post('{"__proto__":{"x":1}}')).statusCode).toBe(400);
  });
});
