/**
 * The data API sandbox: serves a dataset's customers, accounts, merchants and transactions over
 * HTTP for collection exercises. Reviewers watch how a candidate's client handles what real APIs
 * do: an API key, two pagination styles, incremental loads, a rate limit, and (when FAULT_RATE > 0)
 * 5xx answers, slow answers and pages with malformed rows.
 *
 * This file holds only the HTTP wiring: `buildApp` assembles the pure modules (pagination.ts,
 * rate-limit.ts, faults.ts, request-log.ts, config.ts, openapi.ts) into a fastify instance that
 * tests drive with `inject` or a real socket, with problem+json responses and the auth helpers.
 */
import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { DATA_API_VARIANT } from '@epreuve/crds';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
} from 'fastify';
import { z } from 'zod';
import { datasetKey, resolveDataset } from '../datasets/catalog.ts';
import { Random } from '../datasets/random.ts';
import type { RetailData } from '../datasets/retail/v1.ts';
import { ApiKey, MIN_KEY_LENGTH } from './api-key.ts';
import { type DataApiConfig, DEFAULTS } from './config.ts';
import { corruptRow, decideFault, type Fault, type FaultSettings } from './faults.ts';
import { DataApiMetrics, type RejectedReason } from './metrics.ts';
import { docsPage, openApiDocument } from './openapi.ts';
import {
  buildTable,
  encodeCursor,
  type InvalidParam,
  parseListQuery,
  parseTimestamp,
  RESOURCE_NAMES,
  RESOURCES,
  type ResourceName,
  type Row,
  SINGULAR,
  selectPage,
  type Table,
  TIMESTAMP_HINT,
} from './pagination.ts';
import { type Bucket, takeToken } from './rate-limit.ts';
import { type LoggedFault, type LoggedRequest, RingBuffer, redactUrl } from './request-log.ts';

export interface BuildOptions {
  logger?: FastifyServerOptions['logger'];
  /** Clock for the rate limiter and the request log (tests pass a fake one). */
  clock?: () => number;
  /** Pre-generated rows, so tests building many apps generate the dataset once. */
  data?: Pick<RetailData, ResourceName>;
  /**
   * Serve /admin on a server of its own (`app.adminServer`, listened on ADMIN_PORT) instead of the
   * candidates' port: the gateway only ever routes to the candidates' port, so the fault switch
   * and the request log are out of a candidate's reach even with a leaked admin key.
   */
  separateAdmin?: boolean;
  /** Where the candidates' key comes from when it may change (API_KEY_FILE); `config.apiKey`, fixed, otherwise. */
  apiKey?: ApiKey;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** /admin on its own server when `separateAdmin`; the app itself otherwise. */
    adminServer: FastifyInstance;
  }
}

type Problem = {
  status: number;
  detail: string;
  invalid_params?: InvalidParam[];
  headers?: Record<string, string>;
};

function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  const body = {
    type: 'about:blank',
    title: STATUS_CODES[p.status] ?? 'Error',
    status: p.status,
    detail: p.detail,
    instance: reply.request.url.split('?')[0],
    ...(p.invalid_params ? { invalid_params: p.invalid_params } : {}),
  };
  return reply
    .code(p.status)
    .headers(p.headers ?? {})
    .header('content-type', 'application/problem+json; charset=utf-8')
    .send(JSON.stringify(body));
}

const badRequest = (reply: FastifyReply, invalid: InvalidParam[]) =>
  sendProblem(reply, {
    status: 400,
    detail: invalid.map((i) => i.reason).join('; '),
    invalid_params: invalid,
  });

/** An admin body's zod issues as invalid_params, each naming its field (or the unknown keys). */
const invalidParams = (error: z.ZodError): InvalidParam[] =>
  error.issues.map((i) => {
    const name = String(i.path[0] ?? (i.code === 'unrecognized_keys' ? i.keys.join(', ') : 'body'));
    return { name, reason: `${name}: ${i.message}` };
  });

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
/** Constant-time: both sides are hashed to equal length first, so neither content nor length leaks. */
export function sameSecret(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** The key a request carries in X-API-Key (or X-Admin-Key) or as a Bearer token. */
function presentedKey(request: FastifyRequest, header: string): string | null {
  const direct = request.headers[header];
  if (typeof direct === 'string' && direct) return direct;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  return m ? m[1]! : null;
}

interface Note {
  auth: LoggedRequest['auth'];
  fault: LoggedFault | null;
  /** The platform's own call (/admin): never the candidate's work, so never in their log. */
  admin?: boolean;
}

/** Requests kept out of the reviewer log, by why (what a stranger's flood shows up as). */
export interface RejectedCounts {
  missing_key: number;
  invalid_key: number;
  throttled: number;
  anonymous: number;
}

function loadTables(data: Pick<RetailData, ResourceName>): Record<ResourceName, Table> {
  return Object.fromEntries(
    RESOURCE_NAMES.map((r) => [r, buildTable(r, data[r] as unknown as Row[])]),
  ) as Record<ResourceName, Table>;
}

const apiKeyBody = z.strictObject({
  key: z.string().min(MIN_KEY_LENGTH, `must be at least ${MIN_KEY_LENGTH} characters (128 bits)`),
});

const MAX_CONSECUTIVE_FAULTS = 3;
const MAX_TRACKED_REQUESTS = 10_000;

export function buildApp(
  config: Partial<DataApiConfig> & Pick<DataApiConfig, 'apiKey'>,
  options: BuildOptions = {},
): FastifyInstance {
  const cfg: DataApiConfig = { ...DEFAULTS, faultSeed: randomInt(2 ** 32 - 1), ...config };
  const clock = options.clock ?? Date.now;
  const dataset = resolveDataset(cfg.dataset);
  // Generated inline, not held in a variable: the closures below must not keep the whole dataset
  // (card events, app sessions) alive, only the four served tables. The data API serves its own
  // variant (another seed than the warehouse's and the hidden ones): a collection cannot be faked
  // by copying the warehouse, and the seeder loads the same variant for the grader's checks.
  // Its tables only: the card events and app sessions, generated last, would be half the CPU of a
  // start (under the pod's 250m, on the way to Ready) for nothing served.
  const tables = loadTables(options.data ?? dataset.generate(cfg.size, DATA_API_VARIANT, 'tables'));
  const doc = openApiDocument(cfg);
  const docHtml = docsPage(doc);

  const faults: FaultSettings & { seed: number } = {
    rate: cfg.faultRate,
    slowMaxMs: cfg.faultSlowMaxMs,
    seed: cfg.faultSeed,
  };
  let rng = new Random(faults.seed);
  // Consecutive faults per request (method + URL): the same request is faulted at most
  // MAX_CONSECUTIVE_FAULTS times in a row, so a client that retries always gets through.
  const faultStreaks = new Map<string, number>();
  const buckets = new Map<string, Bucket>();
  const log = new RingBuffer<LoggedRequest & { ms: number }>(cfg.requestLogSize);
  const notes = new WeakMap<FastifyRequest, Note>();
  const apiKey = options.apiKey ?? new ApiKey(cfg.apiKey);
  const secrets = () => [apiKey.get(), cfg.adminKey ?? ''];
  let seq = 0;
  // The reviewer log holds the candidate's authenticated calls only: strangers (no key, a wrong
  // key, documentation pages anyone may read) are counted here instead, so no flood can erase it.
  const rejected: RejectedCounts = { missing_key: 0, invalid_key: 0, throttled: 0, anonymous: 0 };
  // Wrong keys in the current minute, for the whole sandbox: past the budget they get 429.
  let wrongKeys = { start: 0, count: 0 };
  // The same counts for Prometheus, on the admin port only (metrics.ts).
  const metrics = new DataApiMetrics();

  const app = Fastify({
    logger: options.logger ?? false,
    // One line per request comes from the onResponse hook below, with the URL redacted.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
  });

  const note = (request: FastifyRequest): Note => {
    let n = notes.get(request);
    if (!n) {
      n = { auth: null, fault: null };
      notes.set(request, n);
    }
    return n;
  };

  function drawFault(request: FastifyRequest, resource: ResourceName, rows: number): Fault | null {
    const key = `${request.method} ${request.url}`;
    const streak = faultStreaks.get(key) ?? 0;
    const fault = streak >= MAX_CONSECUTIVE_FAULTS ? null : decideFault(rng, faults, { resource, rows });
    faultStreaks.delete(key); // re-inserted last: Map order then evicts the stalest first
    if (fault) {
      faultStreaks.set(key, streak + 1);
      if (faultStreaks.size > MAX_TRACKED_REQUESTS) faultStreaks.delete(faultStreaks.keys().next().value!);
    }
    return fault;
  }

  /** Answers an error fault, or waits out a slow one; returns true when the reply was sent. */
  async function applyFault(
    request: FastifyRequest,
    reply: FastifyReply,
    fault: Fault | null,
  ): Promise<boolean> {
    if (!fault || fault.kind === 'malformed') return false;
    if (fault.kind === 'slow') {
      note(request).fault = fault;
      await sleep(fault.delay_ms);
      return false;
    }
    note(request).fault = fault;
    const detail = {
      500: 'The server hit an unexpected error. Retry the request.',
      502: 'An upstream service returned an invalid response. Retry the request.',
      503: 'The service is temporarily unavailable. Retry after the Retry-After delay.',
    }[fault.status];
    sendProblem(reply, {
      status: fault.status,
      detail,
      headers: fault.status === 503 ? { 'retry-after': '1' } : {},
    });
    return true;
  }

  app.addHook('onRequest', async (_request, reply) => {
    reply.header('x-content-type-options', 'nosniff').header('cache-control', 'no-store');
  });

  app.addHook('onResponse', async (request, reply) => {
    if (request.url === '/healthz' || request.url.startsWith('/healthz?')) return;
    const n = notes.get(request);
    const now = clock();
    const forReviewers = n?.auth === 'ok' && !n.admin;
    const entry = {
      seq: forReviewers ? ++seq : 0,
      time: new Date(now).toISOString(),
      method: request.method,
      path: redactUrl(request.url, secrets()),
      status: reply.statusCode,
      duration_ms: Math.round(reply.elapsedTime * 10) / 10,
      auth: n?.auth ?? null,
      fault: n?.fault ?? null,
      client: request.ip,
    };
    if (forReviewers) log.push({ ...entry, ms: now });
    else if (!n?.admin) {
      const reason: RejectedReason =
        reply.statusCode === 429 && n?.auth !== 'ok'
          ? 'throttled'
          : n?.auth === 'missing'
            ? 'missing_key'
            : n?.auth === 'invalid'
              ? 'invalid_key'
              : 'anonymous';
      rejected[reason] += 1;
      metrics.reject(reason);
    }
    // pino writes its own `time`; a second one would make a duplicate JSON key.
    const { time: _time, ...line } = entry;
    request.log.info(line, 'request');
  });

  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status =
      error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    sendProblem(reply, { status, detail: status >= 500 ? 'Internal error' : error.message });
  });
  const notFound = (request: FastifyRequest, reply: FastifyReply) =>
    sendProblem(reply, {
      status: 404,
      detail: `No endpoint ${request.method} ${request.url.split('?')[0]}; see /docs`,
    });
  app.setNotFoundHandler(notFound);

  app.get('/healthz', async () => ({ status: 'ok', dataset: datasetKey(dataset) }));
  app.get('/openapi.json', async () => doc);
  app.get('/docs', async (_request, reply) =>
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
      .send(docHtml),
  );

  app.register(
    async (v1) => {
      // An unknown /v1 path is answered behind the key check too: the gateway counts any answer
      // but 401/403/429 as a logged-in client, and a red-team proof had a wrong key on /v1/nope
      // (a 404 before any key check) counted as the candidate's session, up to their cap.
      v1.setNotFoundHandler(notFound);
      v1.addHook('onRequest', async (request, reply) => {
        const key = presentedKey(request, 'x-api-key');
        if (key === null || !sameSecret(key, apiKey.get())) {
          note(request).auth = key === null ? 'missing' : 'invalid';
          const now = clock();
          if (now - wrongKeys.start >= 60_000) wrongKeys = { start: now, count: 0 };
          wrongKeys.count += 1;
          if (wrongKeys.count > cfg.wrongKeysPerMinute) {
            const retryAfter = Math.max(1, Math.ceil((wrongKeys.start + 60_000 - now) / 1000));
            return sendProblem(reply, {
              status: 429,
              detail: `Too many requests without the right API key; retry after ${retryAfter} s`,
              headers: { 'retry-after': String(retryAfter) },
            });
          }
          return sendProblem(reply, {
            status: 401,
            detail:
              key === null
                ? 'Missing API key: send it as X-API-Key: <key> or Authorization: Bearer <key>'
                : 'Invalid API key',
            headers: { 'www-authenticate': 'Bearer realm="data-api"' },
          });
        }
        note(request).auth = 'ok';
        const bucketKey = digest(key).toString('hex');
        const d = takeToken(buckets.get(bucketKey), clock(), cfg.rateLimitPerMinute);
        buckets.set(bucketKey, d.bucket);
        reply.headers({
          'ratelimit-limit': String(cfg.rateLimitPerMinute),
          'ratelimit-remaining': String(d.remaining),
          'ratelimit-reset': String(d.reset),
          'ratelimit-policy': `${cfg.rateLimitPerMinute};w=60`,
        });
        if (!d.allowed) {
          metrics.rateLimited();
          return sendProblem(reply, {
            status: 429,
            detail: `Rate limit of ${cfg.rateLimitPerMinute} requests per minute exceeded; retry after ${d.retryAfter} s`,
            headers: { 'retry-after': String(d.retryAfter) },
          });
        }
      });

      for (const resource of RESOURCE_NAMES) {
        const table = tables[resource];
        v1.get(`/${resource}`, async (request, reply) => {
          const q = request.url.indexOf('?');
          const parsed = parseListQuery(q < 0 ? '' : request.url.slice(q + 1), resource, cfg.pageSize);
          if (!parsed.ok) return badRequest(reply, parsed.invalid);
          const slice = selectPage(table.keys, parsed.value);
          let rows = table.rows.slice(slice.start, slice.end);
          const fault = drawFault(request, resource, rows.length);
          if (await applyFault(request, reply, fault)) return reply;
          if (fault?.kind === 'malformed') {
            const broken = new Map(fault.rows.map((r) => [r.index, r.corruption]));
            rows = rows.map((row, i) => (broken.has(i) ? corruptRow(row, broken.get(i)!) : row));
            note(request).fault = {
              kind: 'malformed',
              rows: fault.rows.map((r) => ({
                id: table.rows[slice.start + r.index]![RESOURCES[resource]],
                ...r.corruption,
              })),
            };
          }
          const body: Record<string, unknown> = {
            data: rows,
            next_cursor: slice.next ? encodeCursor(resource, slice.next) : null,
          };
          if (slice.total !== undefined) {
            body.total = slice.total;
            body.next_offset = slice.nextOffset;
          }
          return reply.send(body);
        });

        v1.get<{ Params: { id: string } }>(`/${resource}/:id`, async (request, reply) => {
          const { id } = request.params;
          if (!/^[1-9]\d{0,14}$/.test(id)) {
            return badRequest(reply, [{ name: 'id', reason: 'id must be a positive integer' }]);
          }
          if (await applyFault(request, reply, drawFault(request, resource, 0))) return reply;
          const row = table.byId.get(Number(id));
          if (!row)
            return sendProblem(reply, { status: 404, detail: `${SINGULAR[resource]} ${id} not found` });
          return reply.send(row);
        });
      }
    },
    { prefix: '/v1' },
  );

  const adminServer = options.separateAdmin
    ? Fastify({ logger: options.logger ?? false, bodyLimit: 64 * 1024 })
    : app;
  app.decorate('adminServer', adminServer);
  if (adminServer !== app) {
    adminServer.setErrorHandler((error: FastifyError, request, reply) => {
      const status =
        error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
      if (status >= 500) request.log.error({ err: error }, 'request failed');
      sendProblem(reply, { status, detail: status >= 500 ? 'Internal error' : error.message });
    });
    adminServer.get('/healthz', async () => ({ status: 'ok' }));
    // Counts only, no key needed (as every metrics port): the gateway never routes here.
    adminServer.get('/metrics', async (_request, reply) =>
      reply.header('content-type', metrics.registry.contentType).send(await metrics.registry.metrics()),
    );
    app.addHook('onClose', async () => {
      await adminServer.close();
    });
  }
  adminServer.register(
    async (admin) => {
      admin.addHook('onRequest', async (request, reply) => {
        note(request).admin = true;
        if (!cfg.adminKey) {
          return sendProblem(reply, {
            status: 404,
            detail: `No endpoint ${request.method} ${request.url.split('?')[0]}`,
          });
        }
        const key = presentedKey(request, 'x-admin-key');
        if (key === null || !sameSecret(key, cfg.adminKey)) {
          note(request).auth = key === null ? 'missing' : 'invalid';
          return sendProblem(reply, {
            status: 401,
            detail: 'Admin endpoints need the admin key: X-Admin-Key: <key> or Authorization: Bearer <key>',
          });
        }
        note(request).auth = 'ok';
      });

      admin.get('/requests', async (request, reply) => {
        const params = new URLSearchParams(request.url.split('?')[1] ?? '');
        const invalid: InvalidParam[] = [];
        const sinceRaw = params.get('since');
        const since = sinceRaw === null ? null : parseTimestamp(sinceRaw);
        if (sinceRaw !== null && since === null)
          invalid.push({ name: 'since', reason: `since must be ${TIMESTAMP_HINT}` });
        const limitRaw = params.get('limit') ?? '1000';
        const limit = /^\d{1,5}$/.test(limitRaw) ? Number(limitRaw) : 0;
        if (limit < 1 || limit > 10_000)
          invalid.push({ name: 'limit', reason: 'limit must be an integer between 1 and 10000' });
        if (invalid.length) return badRequest(reply, invalid);
        const entries = log.toArray().filter((e) => since === null || e.ms > since);
        // The most recent `limit`, still oldest first so the list reads as a timeline.
        return reply.send({
          data: entries.slice(-limit).map(({ ms: _ms, ...e }) => e),
          capacity: log.capacity,
          rejected,
        });
      });

      const faultBody = z.strictObject({
        rate: z.number().min(0).max(0.5),
        slow_max_ms: z.number().int().min(0).max(60_000).optional(),
        seed: z
          .number()
          .int()
          .min(0)
          .max(2 ** 32 - 1)
          .optional(),
      });
      const current = () => ({ rate: faults.rate, slow_max_ms: faults.slowMaxMs, seed: faults.seed });
      admin.get('/faults', async () => current());
      // A claimed warm pool namespace's new key, from the operator: in force now, the old one refused.
      admin.put('/api-key', async (request, reply) => {
        const res = apiKeyBody.safeParse(request.body);
        if (!res.success) {
          return badRequest(reply, invalidParams(res.error));
        }
        apiKey.set(res.data.key);
        request.log.info('API key replaced');
        return reply.code(204).send();
      });
      admin.post('/faults', async (request, reply) => {
        const res = faultBody.safeParse(request.body);
        if (!res.success) {
          return badRequest(reply, invalidParams(res.error));
        }
        faults.rate = res.data.rate;
        if (res.data.slow_max_ms !== undefined) faults.slowMaxMs = res.data.slow_max_ms;
        if (res.data.seed !== undefined) {
          faults.seed = res.data.seed;
          rng = new Random(faults.seed);
        }
        faultStreaks.clear();
        request.log.info({ faults: current() }, 'fault settings changed');
        return reply.send(current());
      });
    },
    { prefix: '/admin' },
  );

  return app;
}
