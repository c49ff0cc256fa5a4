import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type CheckRequest,
  checkRequest,
  collectionSourceDatabase,
  consoleRequest,
  cutText,
  GRADER,
  type GradeRequest,
  type GradeResponse,
  type GraderPlan,
  gradeRequest,
  hiddenVariantDatabase,
  DB_CREDENTIAL_KEYS as KEYS,
  MAX_ANSWER_LENGTH,
  MAX_CHECK_HINT,
  MAX_CHECK_QUERY,
  MAX_CHECKS,
  MAX_CONSOLE_ROWS,
} from '@epreuve/crds';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { MongoClient } from 'mongodb';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { runChecks, SourceError } from './checks.ts';
import type { ResultSet } from './compare.ts';
import { ConsoleError, runConsolePipeline, runConsoleSql } from './console.ts';
import { AnswerError, type GradeResult, gradeMongo, gradeSql } from './index.ts';
import { runPipeline } from './mongo.ts';
import { AnswerError as QueryError, RECOVERY_WAIT_MS, runQuery } from './sql.ts';
import {
  decodeResult,
  graderStoreUrl,
  referenceKey,
  referenceResults,
  type StoredReference,
} from './store.ts';

/**
 * The grade server: runs a candidate's answers next to their databases, inside their namespace,
 * so that an answer that exhausts memory or time costs this pod alone — never the shared API.
 * The API is its only client (NetworkPolicy) and presents the token from the grader Secret.
 */
export interface GradeServerOptions {
  plan: GraderPlan;
  /** Read at every request, so a rotated token takes effect without a restart. */
  token: () => string;
  log?: Logger | boolean;
  /** Answers graded at once; more wait their turn, up to `maxQueued`, then get a 429. */
  concurrency?: number;
  maxQueued?: number;
  /** Limits applied to every answer (the reference gets more room). */
  limits?: { timeoutMs?: number; rowCap?: number; maxBytes?: number };
  /** Time allowed for all the checks of one check task together. */
  checksDeadlineMs?: number;
}

interface GraderCredentials {
  database: string;
  username: string;
  password: string;
}

/** The sandbox's grader credentials, read from its mounted Secret at each use (rotation-safe). */
function graderCredentials(dir: string): GraderCredentials {
  const read = (key: string) => readFileSync(join(dir, key), 'utf8').trim();
  return {
    database: read(KEYS.database),
    username: read(KEYS.graderUsername),
    password: read(KEYS.graderPassword),
  };
}

/** The candidate's own credentials (the console runs as them), read at each use like the grader's. */
function candidateCredentials(dir: string): GraderCredentials {
  const read = (key: string) => readFileSync(join(dir, key), 'utf8').trim();
  return { database: read(KEYS.database), username: read(KEYS.username), password: read(KEYS.password) };
}

/**
 * A task the grader cannot grade as configured (no grader store, no stored reference result):
 * the template's or the platform's to fix, so a 422, never a pass computed on data the candidate
 * may have changed.
 */
class ReferenceUnavailable extends Error {}

/** The answer could not be graded now (a database or the store unreachable): the candidate retries. */
const unavailable = (explanation: string): GradeResult => ({
  pass: false,
  error: 'Unavailable',
  explanation,
  hint: explanation,
  hintFr: explanation, // a 503 to retry, never stored as a hint
  expectedRows: 0,
  actualRows: 0,
});

/** A small semaphore: at most `limit` holders, a bounded line of waiters. */
class Gate {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly limit: number;
  private readonly maxQueued: number;
  constructor(limit: number, maxQueued: number) {
    this.limit = limit;
    this.maxQueued = maxQueued;
  }
  /** Undefined when the line is full. */
  enter(): Promise<() => void> | undefined {
    if (this.active >= this.limit && this.waiting.length >= this.maxQueued) return undefined;
    const release = () => {
      this.active--;
      this.waiting.shift()?.();
    };
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve(release);
    }
    return new Promise((resolve) =>
      this.waiting.push(() => {
        this.active++;
        resolve(release);
      }),
    );
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** An RFC 9457 problem reply; `retryAfter` (seconds) for the statuses a client may retry. */
function sendProblem(reply: FastifyReply, status: number, detail: string, retryAfter?: number) {
  if (retryAfter !== undefined) reply.header('retry-after', String(retryAfter));
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: 'about:blank', title: TITLES[status] ?? 'Error', status, detail: cutText(detail) });
}

/**
 * A reply with every text cut to MAX_GRADE_TEXT (cutText): the answer's rows and database errors
 * are quoted in them, and a reply over what the API reads is taken for the grader being down, the
 * attempt withdrawn (a free probe of hidden data; red team 6).
 */
export function bounded(body: GradeResponse): GradeResponse {
  return {
    ...body,
    explanation: cutText(body.explanation),
    hint: cutText(body.hint),
    ...(body.hintFr !== undefined && { hintFr: cutText(body.hintFr) }),
    ...(body.checks && {
      checks: body.checks.map((c) => ({ ...c, hint: cutText(c.hint), explanation: cutText(c.explanation) })),
    }),
  };
}

/** A body that fails its schema: 400 naming each field at fault. */
const badBody = (reply: FastifyReply, error: z.ZodError) =>
  sendProblem(reply, 400, error.issues.map((i) => `body.${i.path.join('.')}: ${i.message}`).join('; '));

/** Where an answer is graded: the candidate's database, then each hidden variant's. */
const gradedDatabases = (database: string, sandbox: GraderPlan[number]) => [
  database,
  ...Array.from({ length: sandbox.hiddenVariants ?? 0 }, (_, k) => hiddenVariantDatabase(database, k + 1)),
];

export async function buildGradeServer(o: GradeServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: typeof o.log === 'object' ? o.log : undefined,
    logger: typeof o.log === 'boolean' ? o.log : undefined,
    // An answer and a reference, JSON-escaped, or a check task's checks (MAX_CHECKS of at most two
    // queries and a hint each, JSON-escaped), and nothing more.
    bodyLimit:
      Math.max(8 * MAX_ANSWER_LENGTH, 2 * MAX_CHECKS * (2 * MAX_CHECK_QUERY + MAX_CHECK_HINT)) + 4096,
  });
  const gate = new Gate(o.concurrency ?? 2, o.maxQueued ?? 8);
  const references = new Map<string, Promise<ResultSet>>();
  const limits = { timeoutMs: 5000, rowCap: 10_000, maxBytes: 5 << 20, ...o.limits };

  app.setErrorHandler((err: Error & { statusCode?: number }, request, reply) => {
    const status = err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) request.log.error({ err }, 'grading failed');
    return sendProblem(reply, status, err.message);
  });

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async () => ({ status: 'ok' }));

  const authorized = (request: FastifyRequest) => {
    const presented = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '';
    const expected = o.token();
    return (
      !!expected &&
      presented.length === expected.length &&
      timingSafeEqual(Buffer.from(presented), Buffer.from(expected))
    );
  };
  const unauthorized = (reply: FastifyReply) => sendProblem(reply, 401, 'invalid credentials');
  const busy = (reply: FastifyReply) =>
    sendProblem(reply, 429, 'the grader is busy with earlier answers; retry in a moment', 2);

  /**
   * True when a run that may take `worstMs` would end after the caller stops waiting (its
   * GRADER.waitHeader, counted from when the request arrived). Such a run is refused before it
   * starts: one that ran past the caller's wait would be withdrawn (no attempt spent), so an answer
   * whose run time depends on hidden data, behind console runs that fill the queue, would choose
   * for free which attempts count (a red-team proof). Refused before the start, nothing about the
   * answer is learnt; started, it ends inside the wait, graded.
   */
  const pastCallersWait = (request: FastifyRequest, receivedAt: number, worstMs: number) => {
    const wait = Number(request.headers[GRADER.waitHeader]);
    return Number.isFinite(wait) && wait > 0 && performance.now() - receivedAt + worstMs + 1000 > wait;
  };
  /** The longest one query may take: its limit, then the statement's cut and the client's (sql.ts). */
  const runMs = limits.timeoutMs + 2000;
  /**
   * A grade's worst case: the answer on each database, each reference not computed yet, and one
   * wait for a server that restarts after the answer crashed it (RECOVERY_WAIT_MS: the grade ends
   * at the first failure, so once).
   */
  const gradeWorstMs = (sandbox: GraderPlan[number], req: GradeRequest) => {
    const databases = gradedDatabases(graderCredentials(sandbox.credentials).database, sandbox);
    const uncached =
      req.kind === 'sql'
        ? databases.filter((db) => !references.has(sqlReferenceKey(sandbox, db, req.reference))).length
        : 0;
    return (databases.length + uncached) * runMs + RECOVERY_WAIT_MS;
  };

  /**
   * A check task: the author's checks on the candidate's work area (SQL on PostgreSQL, pipelines on MongoDB), each under
   * an answer's limits, compared with literal rows or with the grader-only copy of what the data
   * API serves. One slot of the gate for the whole run.
   */
  app.post('/v1/check', async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
    const parsed = checkRequest.safeParse(request.body);
    if (!parsed.success) return badBody(reply, parsed.error);
    const req = parsed.data;
    const sandbox = o.plan.find((s) => s.name === req.sandbox);
    if (!sandbox) return sendProblem(reply, 404, `no database sandbox ${req.sandbox}`);
    const mismatch = req.checks.findIndex((c) => (sandbox.kind === 'mongo' ? !c.mongo : !c.sql));
    if (mismatch >= 0)
      return sendProblem(
        reply,
        422,
        `body.checks.${mismatch}: check ${req.checks[mismatch]!.name} needs ${sandbox.kind === 'mongo' ? 'a mongo pipeline' : 'an sql query'}, as sandbox ${sandbox.name} is ${sandbox.kind}`,
      );
    const receivedAt = performance.now();
    const entered = gate.enter();
    if (!entered) return busy(reply);
    const release = await entered;
    if (pastCallersWait(request, receivedAt, (o.checksDeadlineMs ?? 20_000) + runMs + RECOVERY_WAIT_MS)) {
      release();
      return busy(reply);
    }
    try {
      return bounded(await check(sandbox, req));
    } catch (err) {
      if (err instanceof SourceError)
        return sendProblem(reply, err.cause.reason === 'Timeout' ? 503 : 422, err.message);
      if (err instanceof QueryError && err.reason === 'Unavailable')
        return sendProblem(reply, 503, err.message, 2);
      throw err;
    } finally {
      release();
    }
  });

  app.post('/v1/grade', async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
    const parsed = gradeRequest.safeParse(request.body);
    if (!parsed.success) return badBody(reply, parsed.error);
    const req = parsed.data;
    const sandbox = o.plan.find((s) => s.name === req.sandbox);
    if (!sandbox || (sandbox.kind === 'postgres') !== (req.kind === 'sql'))
      return sendProblem(
        reply,
        404,
        `no ${req.kind === 'sql' ? 'PostgreSQL' : 'MongoDB'} sandbox ${req.sandbox}`,
      );
    const receivedAt = performance.now();
    const entered = gate.enter();
    if (!entered) return busy(reply);
    const release = await entered;
    if (pastCallersWait(request, receivedAt, gradeWorstMs(sandbox, req))) {
      release();
      return busy(reply);
    }
    try {
      let result: GradeResult;
      try {
        result = await grade(sandbox, req);
      } catch (err) {
        if (err instanceof ReferenceUnavailable) return sendProblem(reply, 422, err.message);
        // The answer's own failures are grades; an error here is the reference's, run first.
        if (!(err instanceof AnswerError)) throw err;
        if (err.reason === 'Unavailable' || err.reason === 'Timeout')
          return sendProblem(
            reply,
            503,
            `the database did not answer the reference in time: ${err.message}`,
            2,
          );
        return sendProblem(reply, 422, `the reference answer does not run: ${err.message}`);
      }
      if (result.error === 'Unavailable') return sendProblem(reply, 503, result.explanation, 2);
      return bounded({
        pass: result.pass,
        explanation: result.explanation,
        hint: result.hint,
        hintFr: result.hintFr,
        ...(result.error ? { error: result.error } : {}),
        expectedRows: result.expectedRows,
        actualRows: result.actualRows,
      });
    } finally {
      release();
    }
  });

  /**
   * The console (issue 17): one statement or pipeline the candidate runs from their page, as the
   * candidate's own database user — never the grader's — under an answer's limits (the row cap cut
   * to what a page shows). It shares grading's gate, so console runs and answers queue together.
   */
  app.post('/v1/run', async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
    const parsed = consoleRequest.safeParse(request.body);
    if (!parsed.success) return badBody(reply, parsed.error);
    const req = parsed.data;
    const wanted = req.query !== undefined ? 'postgres' : 'mongo';
    const sandbox = o.plan.find((s) => s.name === req.sandbox);
    if (sandbox?.kind !== wanted)
      return sendProblem(
        reply,
        404,
        `no ${wanted === 'postgres' ? 'PostgreSQL' : 'MongoDB'} sandbox ${req.sandbox}`,
      );
    let creds: GraderCredentials;
    try {
      creds = candidateCredentials(sandbox.credentials);
    } catch {
      // A grader started before its Deployment mounted the candidate's keys: the next rollout has them.
      return sendProblem(reply, 503, `the console is not set up for sandbox ${sandbox.name} yet`, 5);
    }
    const entered = gate.enter();
    if (!entered) return busy(reply);
    const release = await entered;
    const runLimits = { ...limits, rowCap: Math.min(limits.rowCap, MAX_CONSOLE_ROWS) };
    try {
      if (req.query !== undefined)
        return await runConsoleSql(
          {
            host: sandbox.host,
            port: sandbox.port,
            user: creds.username,
            password: creds.password,
            database: creds.database,
          },
          req.query,
          runLimits,
        );
      const client = candidateDatabaseClient(sandbox, creds);
      try {
        await client.connect();
      } catch (err) {
        throw new ConsoleError(
          'Unavailable',
          `The database is not reachable right now (${(err as Error).message}); try again in a moment.`,
        );
      }
      try {
        return await runConsolePipeline(client, creds.database, req.collection!, req.pipeline!, runLimits);
      } finally {
        await client.close().catch(() => {});
      }
    } catch (err) {
      if (!(err instanceof QueryError)) throw err;
      if (err.reason === 'Unavailable') return sendProblem(reply, 503, err.message, 2);
      // The statement's own failure: a 422 whose extension members say why and where (consoleFailure).
      return reply
        .code(422)
        .type('application/problem+json')
        .send({
          type: 'about:blank',
          title: TITLES[422],
          status: 422,
          detail: err.message,
          // The same in French, for a candidate whose page speaks French (an extension member).
          detailFr: err.fr,
          reason: err.reason,
          ...(err instanceof ConsoleError && err.position ? { position: err.position } : {}),
        });
    } finally {
      release();
    }
  });

  const sqlReferenceKey = (sandbox: GraderPlan[number], database: string, sql: string) =>
    `${sandbox.name}\0${database}\0${sql}`;

  /** The reference result, computed once per sandbox and reference: the graded data is read-only. */
  function reference(key: string, compute: () => Promise<ResultSet>): Promise<ResultSet> {
    let hit = references.get(key);
    if (!hit) {
      hit = compute();
      references.set(key, hit);
      // A reference that failed (database still starting) is computed again next time.
      hit.catch(() => references.delete(key));
    }
    return hit;
  }

  /**
   * Runs a check task on the candidate's database. Check queries run as the grader on data only:
   * `search_path = pg_catalog, pg_temp` (the template qualifies `work.…`, so no function or operator
   * of the candidate's is picked up), and a query reading a view, a column of the candidate's own
   * type or collation is refused (guard.ts). `sameAsSource` queries run on the collection source
   * database, which holds only seeded data: no object the candidate made ever runs where that data
   * is readable.
   */
  async function check(sandbox: GraderPlan[number], req: CheckRequest): Promise<GradeResponse> {
    const creds = graderCredentials(sandbox.credentials);
    if (sandbox.kind === 'mongo') return mongoChecks(sandbox, creds, req);
    const on = (database: string) => ({
      host: sandbox.host,
      port: sandbox.port,
      user: creds.username,
      password: creds.password,
      database,
    });
    const sourceDb = collectionSourceDatabase(creds.database);
    return runChecks(
      req.checks,
      {
        work: (c) =>
          runQuery(on(creds.database), c.sql!, {
            ...limits,
            searchPath: 'pg_catalog, pg_temp',
            refuseCandidateCode: true,
            applicationName: 'epreuve-check',
          }),
        // Seeded and read-only: computed once per query.
        source: (sql) =>
          reference(`${sandbox.name}\0${sourceDb}\0${sql}`, () =>
            runQuery(on(sourceDb), sql, {
              ...limits,
              rowCap: 100_000,
              maxBytes: 4 * limits.maxBytes,
              applicationName: 'epreuve-source',
            }),
          ),
      },
      { deadlineMs: o.checksDeadlineMs ?? 20_000 },
    );
  }

  /**
   * Runs a check task on a MongoDB sandbox: each pipeline as the grader user on a collection of the
   * candidate's database, under an answer's limits. There is no source copy for MongoDB; the
   * template refuses `sameAsSource` on a mongo check.
   */
  async function mongoChecks(
    sandbox: GraderPlan[number],
    creds: GraderCredentials,
    req: CheckRequest,
  ): Promise<GradeResponse> {
    const client = candidateDatabaseClient(sandbox, creds);
    try {
      await client.connect();
    } catch (err) {
      throw new QueryError(
        'Unavailable',
        `The database is not reachable right now (${(err as Error).message}).`,
      );
    }
    try {
      const options = { timeoutMs: limits.timeoutMs, docCap: limits.rowCap, maxBytes: limits.maxBytes };
      return await runChecks(
        req.checks,
        {
          work: (c) => runPipeline(client, creds.database, c.mongo!.collection, c.mongo!.pipeline, options),
          source: () => Promise.reject(new Error('a mongo check has no sameAsSource')),
        },
        { deadlineMs: o.checksDeadlineMs ?? 20_000 },
      );
    } finally {
      await client.close().catch(() => {});
    }
  }

  /** A client on the candidate's MongoDB database, as `creds` (the grader user, or the candidate's for the console). */
  function candidateDatabaseClient(sandbox: GraderPlan[number], creds: GraderCredentials): MongoClient {
    const url = `mongodb://${encodeURIComponent(creds.username)}:${encodeURIComponent(creds.password)}@${sandbox.host}:${sandbox.port}/${creds.database}?authSource=${creds.database}&directConnection=true`;
    const client = new MongoClient(url, { serverSelectionTimeoutMS: 5000, maxPoolSize: 2 });
    client.on('error', () => {}); // a dying server fails the operation in flight, not the process
    return client;
  }

  /**
   * Grades on the candidate's data, then on each hidden variant (same schema, another seed): an
   * answer passes only if it matches the reference everywhere, so a listed result cannot pass.
   */
  async function grade(sandbox: GraderPlan[number], req: GradeRequest): Promise<GradeResult> {
    const creds = graderCredentials(sandbox.credentials);
    const databases = gradedDatabases(creds.database, sandbox);
    let visible: GradeResult | undefined;
    for (const [i, database] of databases.entries()) {
      const result =
        sandbox.kind === 'postgres'
          ? await gradeOnPostgres(sandbox, { ...creds, database }, req)
          : await gradeOnMongo(sandbox, { ...creds, database }, req, i);
      if (i === 0) visible = result;
      if (result.pass) continue;
      if (i === 0 || result.error === 'Unavailable') return result; // their own data: the message is theirs
      if (result.error)
        // On a hidden variant even an error message is data the candidate must not read: a
        // "cannot cast '(1,Jane,…)' to integer" would spell out a hidden row. Only staff see it.
        return {
          ...visible!,
          pass: false,
          error: result.error,
          explanation: `Correct on the candidate's data, but it fails on hidden variant ${i} (${result.error}): ${result.explanation}`,
          hint: 'Your answer gives the right result on your data, but fails to run on other data of the same shape: it must compute the result from the data, whatever the data.',
          hintFr:
            'Votre réponse donne le bon résultat sur vos données, mais échoue sur d’autres données de même forme : elle doit calculer le résultat à partir des données, quelles qu’elles soient.',
        };
      return {
        ...visible!,
        pass: false,
        explanation: `Correct on the candidate's data, but not on hidden variant ${i}: ${result.explanation}`,
        hint: 'Your answer gives the right result on your data, but not on other data of the same shape: it must compute the result from the data, not list it.',
        hintFr:
          'Votre réponse donne le bon résultat sur vos données, mais pas sur d’autres données de même forme : elle doit calculer le résultat à partir des données, et non le recopier.',
      };
    }
    return visible!;
  }

  async function gradeOnPostgres(sandbox: GraderPlan[number], creds: GraderCredentials, req: GradeRequest) {
    const connection = {
      host: sandbox.host,
      port: sandbox.port,
      user: creds.username,
      password: creds.password,
      database: creds.database,
    };
    const referenceResult = await reference(sqlReferenceKey(sandbox, creds.database, req.reference), () =>
      runQuery(connection, req.reference, {
        ...limits,
        rowCap: 100_000,
        maxBytes: 4 * limits.maxBytes,
        applicationName: 'epreuve-reference',
      }),
    );
    return gradeSql(connection, { reference: req.reference, grader: req.options }, req.answer, {
      ...limits,
      referenceResult,
      applicationName: 'epreuve-answer',
    });
  }

  /** One client per grader store, kept: the store is the grader's own and never rotates its Secret. */
  const stores = new Map<string, Promise<MongoClient>>();
  function storeClient(sandbox: GraderPlan[number]): Promise<MongoClient> {
    let client = stores.get(sandbox.name);
    if (!client) {
      const c = new MongoClient(graderStoreUrl(sandbox.store!), {
        serverSelectionTimeoutMS: 5000,
        maxPoolSize: 4,
      });
      c.on('error', () => {}); // a store that restarts fails the operation in flight, not the process
      client = c.connect();
      stores.set(sandbox.name, client);
      client.catch(() => stores.delete(sandbox.name)); // connected again next time
    }
    return client;
  }
  app.addHook('onClose', async () => {
    await Promise.all([...stores.values()].map((c) => c.then((x) => x.close()).catch(() => {})));
  });

  /**
   * A MongoDB answer: on the candidate's data (variant 0) as the sandbox's grader user, compared with
   * the reference result the seeder stored before the candidate could connect — never one computed
   * now, on data the candidate can write where the server enforces no roles (FerretDB); on a hidden
   * variant, in the grader store, which the candidate cannot reach.
   */
  async function gradeOnMongo(
    sandbox: GraderPlan[number],
    creds: GraderCredentials,
    req: GradeRequest,
    variant: number,
  ): Promise<GradeResult> {
    if (!sandbox.store)
      throw new ReferenceUnavailable(
        `MongoDB sandbox ${sandbox.name} has no grader store: its answers are graded only against reference results stored at seed time`,
      );
    let store: MongoClient;
    try {
      store = await storeClient(sandbox);
    } catch (err) {
      return unavailable(
        `The grader store is not reachable right now (${(err as Error).message}); try again in a moment.`,
      );
    }
    const options = { timeoutMs: limits.timeoutMs, docCap: limits.rowCap, maxBytes: limits.maxBytes };
    const collection = req.collection ?? '';
    const key = referenceKey(creds.database, collection, req.reference);
    const referenceResult = await reference(`${sandbox.name}\0${key}`, async () => {
      let stored: StoredReference | null;
      try {
        stored = await referenceResults(store).findOne({ _id: key });
      } catch (err) {
        throw new AnswerError('Unavailable', `the grader store did not answer (${(err as Error).message})`);
      }
      if (stored) return decodeResult(stored.result);
      if (variant === 0)
        throw new ReferenceUnavailable(
          `no reference result was stored for this task on ${creds.database}.${collection} when sandbox ${sandbox.name} was seeded (a task added or a reference changed since?): answers on the candidate's data are compared only with results computed before the candidate could change it`,
        );
      // A hidden variant lives in the store, out of the candidate's reach: computing it now is safe.
      return runPipeline(store, creds.database, collection, req.reference, {
        ...options,
        docCap: 100_000,
        maxBytes: 4 * limits.maxBytes,
      });
    });
    const exercise = { reference: req.reference, collection: req.collection, grader: req.options };
    if (variant > 0)
      return gradeMongo(store, creds.database, exercise, req.answer, { ...options, referenceResult });
    const client = candidateDatabaseClient(sandbox, creds);
    try {
      await client.connect();
    } catch (err) {
      return unavailable(
        `The database is not reachable right now (${(err as Error).message}); try again in a moment.`,
      );
    }
    try {
      return await gradeMongo(client, creds.database, exercise, req.answer, { ...options, referenceResult });
    } finally {
      await client.close().catch(() => {});
    }
  }

  return app as unknown as FastifyInstance;
}
