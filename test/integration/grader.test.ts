import { rmSync } from 'node:fs';
import { GRADER, type GradeRequest, type GraderPlan, DB_CREDENTIAL_KEYS as KEYS } from '@epreuve/crds';
import type { FastifyInstance } from 'fastify';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FerretServer } from '../../hack/cluster/ferretdb.ts';
import { resolveDataset } from '../../sandboxes/src/datasets/catalog.ts';
import { MONGO_EXERCISES } from '../../sandboxes/src/exercises/mongo.ts';
import { SQL_EXERCISES } from '../../sandboxes/src/exercises/sql.ts';
import { buildGradeServer } from '../../sandboxes/src/grader/server.ts';
import { seedPostgres } from '../../sandboxes/src/seeder/postgres.ts';
import { runSeed } from '../../sandboxes/src/seeder/run.ts';
import { credentialsDir as writeCredentials } from '../harness/grader.ts';
import { GraderStore } from '../harness/grader-store.ts';

/**
 * The grade server (the grader that runs in each candidate namespace) against a real PostgreSQL and
 * a real MongoDB wire-protocol server: hostile answers cost an answer, never the grader process,
 * and the next answer is graded.
 */
const server = inject('postgres');
const DB = `grader_${process.pid}`;
// The e2e tier's MongoDB as it runs: FerretDB with SCRAM authentication, seeded by the seed Job's code.
const mongoCreds = {
  [KEYS.database]: 'sandbox',
  [KEYS.username]: 'candidate',
  [KEYS.password]: 'candidate-pw',
  [KEYS.adminUsername]: 'root',
  [KEYS.adminPassword]: 'root-pw-0123456789',
  [KEYS.graderUsername]: 'grader',
  [KEYS.graderPassword]: 'grader-pw',
};
const ferret = new FerretServer({
  auth: { username: mongoCreds[KEYS.adminUsername], password: mongoCreds[KEYS.adminPassword] },
});
// The grader store, where the seeder puts the reference results MongoDB answers are compared with.
const store = new GraderStore();
const TOKEN = 'grader-token-0123456789abcdef';
const dirs: string[] = [];
let admin: pg.ClientConfig;
let app: FastifyInstance;

function credentialsDir(values: Record<string, string>): string {
  const dir = writeCredentials(values);
  dirs.push(dir);
  return dir;
}

/** The PostgreSQL sandbox every grade server here grades on, as the grader. */
const warehouse = (): GraderPlan[number] => ({
  name: 'warehouse',
  kind: 'postgres',
  host: server.host,
  port: server.port,
  credentials: credentialsDir({
    [KEYS.database]: DB,
    [KEYS.graderUsername]: 'grader',
    [KEYS.graderPassword]: 'grader-pw',
  }),
});

const sqlExercise = SQL_EXERCISES.find((e) => e.id === 'rank-customers-by-country')!;
const mongoExercise = MONGO_EXERCISES.find((e) => e.id === 'sessions-per-device')!;
const sqlRequest = (answer: string): GradeRequest => ({
  sandbox: 'warehouse',
  kind: 'sql',
  reference: sqlExercise.reference,
  options: sqlExercise.grader,
  answer,
});
const mongoRequest = (answer: string): GradeRequest => ({
  sandbox: 'events',
  kind: 'mongo',
  reference: mongoExercise.reference,
  collection: mongoExercise.collection,
  options: mongoExercise.grader,
  answer,
});

const grade = (body: unknown, token = TOKEN) =>
  app.inject({
    method: 'POST',
    url: '/v1/grade',
    headers: { authorization: `Bearer ${token}` },
    payload: body as object,
  });

beforeAll(async () => {
  const c = new pg.Client({ ...server, database: 'postgres' });
  await c.connect();
  await c.query(`CREATE DATABASE ${DB}`);
  await c.end();
  admin = { ...server, database: DB };
  const users = {
    candidate: { username: 'candidate', password: 'candidate-pw' },
    grader: { username: 'grader', password: 'grader-pw' },
  };
  await seedPostgres(admin, {
    dataset: resolveDataset('retail@1'),
    size: 'small',
    ...users,
    log: () => {},
  });
  await Promise.all([ferret.start(), store.start()]);
  const mongoDir = credentialsDir(mongoCreds);
  await runSeed(
    [
      {
        name: 'events',
        kind: 'mongo',
        host: '127.0.0.1',
        port: ferret.port,
        dataset: 'retail@1',
        credentials: mongoDir,
        store: store.location,
        references: [{ task: 'devices', exercise: mongoExercise.id }],
      },
    ],
    // FerretDB has no roles: the local cluster's opt-in.
    { size: 'small', waitTimeoutMs: 30_000, log: () => {}, allowRolelessUsers: true },
  );
  const plan: GraderPlan = [
    warehouse(),
    {
      name: 'events',
      kind: 'mongo',
      host: '127.0.0.1',
      port: ferret.port,
      credentials: mongoDir,
      store: store.location,
    },
  ];
  app = await buildGradeServer({ plan, token: () => TOKEN, limits: { timeoutMs: 4000, maxBytes: 2 << 20 } });
}, 180_000);

afterAll(async () => {
  await app?.close();
  await Promise.all([ferret.stop(), store.stop()]);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('grade server', () => {
  it('grades the reference answer as a pass, a wrong one as a fail, on both kinds of sandbox', async () => {
    const pass = await grade(sqlRequest(sqlExercise.reference));
    expect(pass.statusCode).toBe(200);
    expect(pass.json()).toMatchObject({ pass: true });
    const fail = await grade(sqlRequest(sqlExercise.wrongAnswers[0]!.answer));
    expect(fail.json()).toMatchObject({ pass: false });
    const mongoPass = await grade(mongoRequest(mongoExercise.reference));
    expect(mongoPass.statusCode, mongoPass.body).toBe(200);
    expect(mongoPass.json()).toMatchObject({ pass: true });
  });

  it('refuses a wrong token, a bad body (naming the field) and an unknown sandbox', async () => {
    const wrong = await grade(sqlRequest('SELECT 1'), 'not-the-token-not-the-token-xx');
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().detail).toBe('invalid credentials');
    const bad = await grade({ ...sqlRequest('SELECT 1'), kind: 'cobol' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().detail).toMatch(/body\.kind/);
    const unknown = await grade({ ...sqlRequest('SELECT 1'), sandbox: 'nope' });
    expect(unknown.statusCode).toBe(404);
  });

  it('cuts a huge single value at the byte cap, with memory bounded, and grades the next answer', async () => {
    const before = process.memoryUsage().rss;
    const res = await grade(sqlRequest(`SELECT repeat('x', 100000000)`));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ pass: false, error: 'TooLarge' });
    // Without the socket budget node-postgres would buffer the whole 100 MB value, then copy it into a string.
    expect(process.memoryUsage().rss - before).toBeLessThan(60 << 20);
    expect((await grade(sqlRequest(sqlExercise.reference))).json()).toMatchObject({ pass: true });
  });

  it('cuts many large rows at the byte cap', async () => {
    const res = await grade(sqlRequest(`SELECT repeat('x', 1000000) FROM generate_series(1, 30)`));
    expect(res.json()).toMatchObject({ pass: false, error: 'TooLarge' });
  });

  it('stops long sleeps and cross joins at the time limit', async () => {
    const sleep = await grade(sqlRequest('SELECT pg_sleep(30)'));
    expect(sleep.json()).toMatchObject({ pass: false, error: 'Timeout' });
    const cross = await grade(
      sqlRequest('SELECT count(*) FROM transactions a, transactions b, transactions c'),
    );
    expect(cross.json()).toMatchObject({ pass: false, error: 'Timeout' });
  });

  it('holds one time limit for the whole answer, not one per batch of rows it fetches', async () => {
    // 3 ms a row: each batch of 500 rows takes 1.5 s, under the 4 s statement limit, and the 8
    // batches 12 s in all; the answer is stopped at its limit instead.
    const started = Date.now();
    const slow = await grade(sqlRequest('SELECT g, pg_sleep(0.003) FROM generate_series(1, 4000) g'));
    expect(slow.json()).toMatchObject({ pass: false, error: 'Timeout' });
    expect(Date.now() - started).toBeLessThan(8000);
    // And the next answer is graded.
    expect((await grade(sqlRequest(sqlExercise.reference))).json().pass).toBe(true);
  }, 30_000);

  it('an answer that turns its own statement_timeout off is stopped at the limit, and so is its backend', async () => {
    // The first row turns the timeout off for the transaction; the second batch of rows (another
    // FETCH, whose timer is armed from the setting then) sleeps.
    const started = Date.now();
    const res = await grade(
      sqlRequest(
        `SELECT g, CASE WHEN g = 1 THEN set_config('statement_timeout', '0', true) WHEN g = 501 THEN pg_sleep(30)::text END FROM generate_series(1, 600) g`,
      ),
    );
    expect(res.json()).toMatchObject({ pass: false, error: 'Timeout' });
    expect(Date.now() - started).toBeLessThan(8000);
    const c = new pg.Client(admin);
    await c.connect();
    try {
      const sleeping = `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND usename = 'grader' AND wait_event = 'PgSleep'`;
      let left = 1;
      for (let i = 0; i < 20 && left > 0; i++) {
        left = (await c.query(sleeping, [DB])).rowCount ?? 0;
        if (left > 0) await new Promise((r) => setTimeout(r, 100));
      }
      // Without the stop, the backend sleeps on for 30 s after the answer was graded.
      await c.query(`SELECT pg_terminate_backend(pid) FROM (${sleeping}) AS s`, [DB]);
      expect(left).toBe(0);
    } finally {
      await c.end();
    }
  }, 20_000);

  it('an answer cannot read the text of a reference the grader runs at the same time', async () => {
    const secret = `reference_${process.pid}_${Date.now()}`;
    // A reference is in pg_stat_activity as it is parsed and planned (its cursor's DECLARE), then
    // as FETCH: a lock on the table it reads holds that moment open, where a candidate's answer
    // would poll for it.
    const locker = new pg.Client(admin);
    await locker.connect();
    let slow: ReturnType<typeof grade> | undefined;
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE retail.customers IN ACCESS EXCLUSIVE MODE');
      slow = grade({ ...sqlRequest('SELECT 1'), reference: `SELECT '${secret}' AS m FROM customers` });
      for (let i = 0; i < 40; i++) {
        const waiting = await locker.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND usename = 'grader' AND wait_event_type = 'Lock'`,
          [DB],
        );
        if (waiting.rowCount) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      // The grader role read its own sessions' queries: raised in an error, the reference's text
      // would reach the candidate in the hint. Now its sessions record no text
      // (track_activities off), and the statistics functions are closed to it anyway.
      const spy = await grade({
        ...sqlRequest(
          `SELECT ('x' || (SELECT string_agg(query, ' | ') FROM pg_stat_activity WHERE pid <> pg_backend_pid()))::int`,
        ),
        reference: 'SELECT 1 AS one', // not on the locked table
      });
      expect(spy.json()).toMatchObject({ pass: false, error: 'Forbidden' });
      expect(spy.json().hint).not.toContain(secret);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
      await slow;
    }
  });

  it('the candidate role reads no other role’s query text: neither superuser nor pg_read_all_stats', async () => {
    const c = new pg.Client({ ...admin, user: 'candidate', password: 'candidate-pw' });
    await c.connect();
    const slow = grade({
      ...sqlRequest('SELECT 1'),
      reference: 'SELECT pg_sleep(1)::text AS slow_reference',
    });
    try {
      const rights = await c.query(
        `SELECT rolsuper, pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS stats FROM pg_roles WHERE rolname = current_user`,
      );
      expect(rights.rows).toEqual([{ rolsuper: false, stats: false }]);
      // And pg_stat_activity is closed to it altogether (closeSideChannels in the seeder).
      await expect(
        c.query(`SELECT query FROM pg_stat_activity WHERE usename = 'grader' AND datname = $1`, [DB]),
      ).rejects.toThrow(/permission denied for function pg_stat_get_activity/);
    } finally {
      await slow;
      await c.end();
    }
  });

  it('refuses writes, several statements and server-side functions that write', async () => {
    for (const answer of [
      'DELETE FROM customers',
      'SELECT 1; DROP TABLE customers',
      `SELECT set_config('default_transaction_read_only', 'off', false)`,
      'CREATE TABLE work.x AS SELECT 1',
    ]) {
      const res = await grade(sqlRequest(answer));
      expect(res.statusCode, answer).toBe(200);
      expect(res.json().pass, `${answer}: ${res.body}`).toBe(false);
    }
    const c = new pg.Client(admin);
    await c.connect();
    expect((await c.query('SELECT count(*)::int AS n FROM retail.customers')).rows[0].n).toBeGreaterThan(0);
    await c.end();
  });

  // A session ended (57P01) while the server takes new ones at once is graded, not a 503: an answer
  // may end its own session (pg_terminate_backend(pg_backend_pid()), which a role may do), and a
  // 503 withdrew the attempt, a free oracle on the hidden variants. A server going down still is.
  it('grades an answer whose backend is ended mid-query as failed, not a 503, without crashing, and grades the next answer', async () => {
    const killer = new pg.Client({ ...server, database: DB });
    await killer.connect();
    const running = grade(sqlRequest('SELECT pg_sleep(1.5), 1 AS x'));
    // Terminate the grader's backend while the answer runs.
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const killed = await killer.query(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND usename = 'grader' AND application_name = 'epreuve-answer' AND wait_event = 'PgSleep'`,
        [DB],
      );
      if (killed.rowCount) break;
    }
    await killer.end();
    const res = await running;
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ pass: false, error: 'Forbidden' });
    expect(res.json().hint).toMatch(/session was ended while it ran/);
    expect((await grade(sqlRequest(sqlExercise.reference))).json()).toMatchObject({ pass: true });
  });

  // A red-team finding: a result the grader could not read ('infinity' broke the timestamp parser:
  // 503) or compare (JSON nested 8 000 deep exhausted the stack: 500) withdrew the attempt, so an
  // answer could choose it on a hidden variant as a free yes/no question about the hidden data.
  it.each([
    ['an infinite timestamp', `SELECT 'infinity'::timestamp AS t`, undefined],
    ['a year JavaScript cannot hold', `SELECT '294276-12-31 23:59:59'::timestamp AS t`, undefined],
    [
      'JSON nested 8 000 deep, in the reference’s columns',
      `SELECT 'FR' AS country, 1 AS customer_id, 1 AS total_spend, (repeat('[', 8000) || repeat(']', 8000))::jsonb AS spend_rank`,
      'TooLarge',
    ],
  ])('grades an answer returning %s as a failed attempt, never a 5xx', async (_, answer, error) => {
    const res = await grade(sqlRequest(answer));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().pass).toBe(false);
    expect(res.json().error).toBe(error);
  });

  // A red-team proof: console runs filled the grader's queue so that an answer that slept longer
  // on a hidden variant ran past the API's 30 s wait, and a run past the wait is withdrawn (no
  // attempt spent): a free yes/no question about the hidden data. A run that could end after the
  // caller's wait (GRADER.waitHeader) is now refused before it starts; one that starts ends inside.
  it('refuses, before running it, an answer that could not end before the caller stops waiting', async () => {
    // One slot, 2 s answers: a run takes at most 4 s once the reference is computed, and the grade
    // may wait 10 s more for a server that restarts after the answer crashed it (RECOVERY_WAIT_MS).
    const one = await buildGradeServer({
      plan: [warehouse()],
      token: () => TOKEN,
      limits: { timeoutMs: 2000 },
      concurrency: 1,
      maxQueued: 4,
    });
    const gradeWaiting = (answer: string, waitMs: number) =>
      one.inject({
        method: 'POST',
        url: '/v1/grade',
        headers: { authorization: `Bearer ${TOKEN}`, [GRADER.waitHeader]: String(waitMs) },
        payload: sqlRequest(answer),
      });
    try {
      // Reference computed (so the worst case is one run and a restart: 14 s, and 1 s of margin), then a slot held 1.5 s.
      expect((await gradeWaiting(sqlExercise.reference, 60_000)).json()).toMatchObject({ pass: true });
      const holding = gradeWaiting('SELECT pg_sleep(1.5), 1 AS x', 60_000);
      // 16 s of wait: enough for 14 s and 1 s of margin only if it starts within 1 s.
      const queued = gradeWaiting(sqlExercise.reference, 16_000);
      const [held, refused] = await Promise.all([holding, queued]);
      expect(held.json()).toMatchObject({ pass: false });
      expect(refused.statusCode, refused.body).toBe(429);
      expect(refused.json().detail).toMatch(/busy/);
      // With the slot free the same request runs, and is graded.
      expect((await gradeWaiting(sqlExercise.reference, 16_000)).json()).toMatchObject({ pass: true });
      // Without the header (no caller's wait said), nothing is refused for time.
      expect(
        (
          await one.inject({
            method: 'POST',
            url: '/v1/grade',
            headers: { authorization: `Bearer ${TOKEN}` },
            payload: sqlRequest(sqlExercise.reference),
          })
        ).statusCode,
      ).toBe(200);
    } finally {
      await one.close();
    }
  });

  it('refuses pipelines that write or run JavaScript, and answers that are not pipelines', async () => {
    for (const answer of [
      '[{"$out": "app_sessions"}]',
      '[{"$match": {"$where": "sleep(10000)"}}]',
      '{"$match": {}}',
    ]) {
      const res = await grade(mongoRequest(answer));
      expect(res.json().pass, `${answer}: ${res.body}`).toBe(false);
    }
  });

  it('grades answers a fuzzer sends (NUL bytes, lone surrogates, control characters, odd JSON) as failures, never a 5xx', async () => {
    const odd = [
      '\u0000',
      'SELECT 1\u0000; DROP TABLE x',
      '\ud800',
      "SELECT '\ud83d'",
      '\u0085\u2028\u2029',
      '\u001b[31m',
      '{}',
      '[]',
      '[{"$match": {"$where": "1"}}]',
      '[{"\u0000": 1}]',
      '[{"$match": {"a\u0000b": 1}}]',
      '[{"$project": {"\ud800": 1}}]',
      '[{"$limit": 1e400}]',
      '[{"$limit": -1}]',
      '[{"$skip": 9007199254740993}]',
      '[{"$sort": {}}]',
      '[{"$group": {}}]',
      '['.repeat(5000),
      'null',
      '0',
      '"x"',
    ];
    for (const answer of odd) {
      for (const req of [sqlRequest(answer), mongoRequest(answer)]) {
        const res = await grade(req);
        expect(res.statusCode, `${req.kind} ${JSON.stringify(answer).slice(0, 80)}: ${res.body}`).toBe(200);
        expect(res.json().pass).toBe(false);
      }
    }
  });
});

/**
 * A check task on a MongoDB sandbox: the author's pipelines run by the grader on collections the
 * candidate built in their database, as for SQL checks on `work`.
 */
describe('check tasks on MongoDB', () => {
  const CHECKS = [
    {
      name: 'devices-loaded',
      mongo: { collection: 'device_totals', pipeline: '[{"$count": "n"}]' },
      expect: { rows: [['3']] },
      hint: 'Load one document per device type.',
    },
    {
      name: 'no-duplicate-devices',
      mongo: {
        collection: 'device_totals',
        pipeline: '[{"$group": {"_id": "$device", "n": {"$sum": 1}}}, {"$match": {"n": {"$gt": 1}}}]',
      },
      expect: { noRows: true },
      hint: 'Each device type once.',
    },
  ];
  const check = (checks: unknown[], sandbox = 'events') =>
    app.inject({
      method: 'POST',
      url: '/v1/check',
      headers: { authorization: `Bearer ${TOKEN}` },
      payload: { sandbox, checks },
    });

  it('fails on an empty work area, names the failing check, and passes once the candidate loads it right', async () => {
    const candidate = new MongoClient(
      `mongodb://candidate:candidate-pw@127.0.0.1:${ferret.port}/sandbox?authSource=sandbox&directConnection=true`,
    );
    candidate.on('error', () => {});
    await candidate.connect();
    try {
      const totals = candidate.db('sandbox').collection('device_totals');
      await totals.deleteMany({});
      const empty = await check(CHECKS);
      expect(empty.statusCode, empty.body).toBe(200);
      expect(empty.json()).toMatchObject({ pass: false, expectedRows: 2, actualRows: 1 });
      expect(empty.json().hint).toMatch(
        /^1 of 2 checks fail: devices-loaded\. devices-loaded: Load one document/,
      );

      // A duplicate device fails the duplicate check, and the count check with it.
      await totals.insertMany([
        { device: 'ios', sessions: 1 },
        { device: 'ios', sessions: 2 },
        { device: 'web', sessions: 3 },
      ]);
      const dupes = await check(CHECKS);
      expect(dupes.json().checks.map((c: { pass: boolean }) => c.pass)).toEqual([true, false]);

      await totals.deleteMany({ device: 'ios', sessions: 2 });
      await totals.insertOne({ device: 'android', sessions: 4 });
      const good = await check(CHECKS);
      expect(good.statusCode, good.body).toBe(200);
      expect(good.json()).toMatchObject({ pass: true, hint: 'All 2 checks pass.' });
    } finally {
      await candidate.close();
    }
  });

  it('refuses an sql check on a mongo sandbox and a mongo check on a postgres one, naming the check', async () => {
    const sqlOnMongo = await check([{ name: 'x', sql: 'SELECT 1', expect: { noRows: true }, hint: 'h' }]);
    expect(sqlOnMongo.statusCode).toBe(422);
    expect(sqlOnMongo.json().detail).toBe(
      'body.checks.0: check x needs a mongo pipeline, as sandbox events is mongo',
    );
    const mongoOnSql = await check([CHECKS[0]], 'warehouse');
    expect(mongoOnSql.statusCode).toBe(422);
    expect(mongoOnSql.json().detail).toBe(
      'body.checks.0: check devices-loaded needs an sql query, as sandbox warehouse is postgres',
    );
  });

  it('a check pipeline that writes ($out) is refused like an answer that writes: the check fails as Forbidden', async () => {
    const res = await check([
      {
        name: 'sneaky',
        mongo: { collection: 'device_totals', pipeline: '[{"$out": "app_sessions"}]' },
        expect: { noRows: true },
        hint: 'h',
      },
    ]);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().checks[0]).toMatchObject({ pass: false, error: 'Forbidden' });
  });
});
