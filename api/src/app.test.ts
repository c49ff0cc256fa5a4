import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Informer, KubeClient, KubeObject } from '@epreuve/kube';
import Fastify from 'fastify';
import { validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildApp } from './app.ts';
import { loadApiConfig } from './config.ts';
import problemPlugin from './plugins/app/problem.ts';
import { type AssessmentObject, AssessmentStore, type TemplateObject } from './services/assessments.ts';
import {
  Conflict,
  Forbidden,
  Invalid,
  Malformed,
  Misconfigured,
  NotFound,
  Unauthenticated,
  Unavailable,
} from './services/errors.ts';
import { LinkSigner } from './services/links.ts';

/** The app without a cluster: empty caches, no client. What it declares, and how it answers errors. */
type Json = Record<string, any>;
let synced = true;
const informer = <T extends KubeObject>() =>
  ({ get: () => undefined, list: () => [], hasSynced: () => synced }) as unknown as Informer<T>;
const client = {} as KubeClient;
// What the process is warned of while the app is built (a deprecated option warns on every start).
const startWarnings: string[] = [];
const recordWarning = (w: Error) => startWarnings.push(`${w.name}: ${w.message}`);
process.on('warning', recordWarning);
const app = await buildApp({
  // Load shedding is not under test here: on a busy machine a sample interval with no loop-delay
  // sample at all reads as an infinite delay (under-pressure), and every request would answer 503.
  config: loadApiConfig({ EPREUVE_LOAD_SAMPLE_INTERVAL_MS: '600000' }),
  client,
  store: new AssessmentStore(client, informer<AssessmentObject>(), informer<TemplateObject>()),
  links: await LinkSigner.ephemeral(),
});
await app.ready();
await new Promise((resolve) => setImmediate(resolve));
process.off('warning', recordWarning);
let doc: Json;
const operations = () =>
  Object.entries<Json>(doc.paths).flatMap(([path, ops]) =>
    Object.entries<Json>(ops).map(([method, op]) => ({ id: `${method.toUpperCase()} ${path}`, op })),
  );

beforeAll(async () => {
  doc = (await app.inject('/openapi.json')).json();
});
afterAll(() => app.close());

describe('building the app', () => {
  it('uses no deprecated fastify option (each one warns on every start)', () => {
    expect(startWarnings.filter((w) => w.startsWith('Fastify'))).toEqual([]);
  });
});

describe('the OpenAPI document', () => {
  it('declares who may call each operation: the probes are public', () => {
    for (const { id, op } of operations()) {
      const expected = id.includes('/candidate/')
        ? [{ candidate: [] }]
        : id.includes('/api/v1/')
          ? [{ staff: [] }]
          : [];
      expect(op.security, id).toEqual(expected);
    }
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/healthz', '/readyz']));
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['candidate', 'staff']);
  });

  it('lists the problems every API operation can answer, as problem+json', () => {
    for (const { id, op } of operations().filter((o) => o.id.includes('/api/v1/'))) {
      const statuses = Object.keys(op.responses);
      const needed = ['400', '401', '403', '429', '503', ...(op.requestBody ? ['413', '415'] : [])];
      expect(statuses, id).toEqual(expect.arrayContaining(needed));
      expect(
        statuses.some((s) => s.startsWith('2')),
        id,
      ).toBe(true);
      for (const s of statuses.filter((x) => Number(x) >= 400))
        expect(op.responses[s].content, `${id} ${s}`).toEqual({
          'application/problem+json': {
            // The console's failures carry extension members (reason, position): a Problem too.
            schema: {
              $ref:
                id === 'POST /api/v1/candidate/console' && s === '422'
                  ? '#/components/schemas/ConsoleProblem'
                  : '#/components/schemas/Problem',
            },
          },
        });
    }
  });

  it('names only the schemas it uses', () => {
    const text = JSON.stringify(doc.paths);
    for (const name of Object.keys(doc.components.schemas))
      expect(JSON.stringify(doc).includes(`#/components/schemas/${name}"`), name).toBe(true);
    expect(text).toContain('#/components/schemas/Assessment"');
  });
});

describe('probes', () => {
  it('answer 200 when the caches are synced, 503 (JSON) until then', async () => {
    expect((await app.inject('/healthz')).json()).toEqual({ status: 'ok' });
    expect((await app.inject('/readyz')).statusCode).toBe(200);
    synced = false;
    const res = await app.inject('/readyz');
    synced = true;
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: 'caches not synced' });
  });
});

describe('errors', () => {
  it('are problem+json, authentication before validation', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/teams/NOT_A_TEAM/assessments?limit=0' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(res.json()).toEqual({
      type: 'about:blank',
      title: 'Unauthorized',
      status: 401,
      detail: 'missing bearer token: send Authorization: Bearer <OIDC token or API key>',
      instance: '/api/v1/teams/NOT_A_TEAM/assessments',
    });
    const unknown = await app.inject('/nowhere?x=1');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().detail).toBe('no route for GET /nowhere');
  });

  it("speak the candidate's language: French when Accept-Language prefers it, English otherwise", async () => {
    const ask = async (lang?: string) =>
      (
        await app.inject({
          url: '/api/v1/candidate/session',
          headers: lang ? { 'accept-language': lang } : {},
        })
      ).json().detail;
    expect(await ask('fr-FR,fr;q=0.9,en;q=0.5')).toBe('jeton absent : ouvrez le lien que vous avez reçu');
    expect(await ask('de-DE,fr;q=0.8,en;q=0.9')).toBe('missing bearer token: open the link you were sent');
    expect(await ask('de-DE')).toBe('missing bearer token: open the link you were sent');
    expect(await ask()).toBe('missing bearer token: open the link you were sent');
  });

  it('the pages load their scripts over the scheme they were served on (no upgrade-insecure-requests)', async () => {
    const res = await app.inject('/staff');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-security-policy']).toMatch(/script-src 'self'/);
    expect(res.headers['content-security-policy']).not.toMatch(/upgrade-insecure-requests/);
  });

  it('include what the router refuses before any route: too long a path segment, bad percent-encoding', async () => {
    for (const url of [`/api/v1/teams/${'a'.repeat(101)}/templates`, '/api/v1/teams/%E0%A4%A/templates']) {
      const res = await app.inject({ url, headers: { 'x-request-id': 'router-1' } });
      expect(res.statusCode, url).toBe(400);
      expect(res.headers['x-request-id'], url).toBe('router-1');
      expect(res.headers['content-type'], url).toMatch(/^application\/problem\+json/);
      expect(res.json(), url).toMatchObject({ status: 400, title: 'Bad Request' });
    }
  });

  describe('from the domain', async () => {
    const t = Fastify();
    t.setValidatorCompiler(validatorCompiler);
    await t.register(problemPlugin);
    const r = t.withTypeProvider<ZodTypeProvider>();
    const errors: Record<string, () => Error> = {
      malformed: () => new Malformed('cursor is not a cursor this API returned', 'cursor', 'malformed'),
      unauthenticated: () => new Unauthenticated('this link has expired'),
      forbidden: () => new Forbidden('this assessment was revoked'),
      'not-found': () =>
        new NotFound('no task x in this assessment', { field: 'task', reason: 'no such task' }),
      conflict: () =>
        new Conflict('an assessment named x already exists', { field: 'name', reason: 'taken' }),
      invalid: () => new Invalid('duration 9h exceeds 8h', 'duration', 'at most 8h'),
      misconfigured: () => new Misconfigured('this task has no reference answer; tell the recruiter'),
      unavailable: () => new Unavailable('sandbox warehouse could not grade this answer now', 5),
      bug: () => new TypeError('secret internals'),
    };
    r.post(
      '/:task/:error',
      {
        schema: {
          params: z.object({ task: z.string(), error: z.string() }),
          querystring: z.object({ cursor: z.string().optional() }),
          body: z.object({ duration: z.string().optional(), name: z.string().optional() }),
        },
      },
      async (request) => {
        throw errors[request.params.error]!();
      },
    );
    const call = (error: string) => t.inject({ method: 'POST', url: `/t/${error}?cursor=x`, payload: {} });

    it.each([
      ['malformed', 400, 'querystring.cursor'],
      ['unauthenticated', 401, undefined],
      ['forbidden', 403, undefined],
      ['not-found', 404, 'params.task'],
      ['conflict', 409, 'body.name'],
      ['invalid', 422, 'body.duration'],
      ['misconfigured', 500, undefined],
      ['unavailable', 503, undefined],
    ])('%s → %i, naming where the field was', async (error, status, field) => {
      const res = await call(error);
      expect(res.statusCode).toBe(status);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      const body = res.json();
      expect(body).toMatchObject({ status, detail: errors[error]!().message, instance: `/t/${error}` });
      expect(body.invalid_params?.[0]?.name).toBe(field);
    });

    it('401 asks for a bearer token; 503 says when to retry', async () => {
      expect((await call('unauthenticated')).headers['www-authenticate']).toBe('Bearer');
      expect((await call('unavailable')).headers['retry-after']).toBe('5');
    });

    it('anything else is a 500 that tells nothing of the internals', async () => {
      const res = await call('bug');
      expect(res.statusCode).toBe(500);
      expect(res.body).not.toContain('secret');
    });
  });
});

describe('services', () => {
  it('know nothing of HTTP: no plugin, route, request, reply or status code in them', () => {
    const dir = join(import.meta.dirname, 'services');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
      const text = readFileSync(join(dir, file), 'utf8');
      expect(text, file).not.toMatch(/from '\.\.\/(plugins|routes)\//);
      expect(text, file).not.toMatch(/\b(FastifyRequest|FastifyReply|statusCode|Problem)\b/);
    }
  });
});
