import { rmSync } from 'node:fs';
import {
  GRADER_STORE,
  type GradeRequest,
  type GraderPlan,
  hiddenVariantDatabase,
  DB_CREDENTIAL_KEYS as KEYS,
} from '@epreuve/crds';
import type { FastifyInstance } from 'fastify';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snippets } from '../../api/src/services/connections.ts';
import { FerretServer } from '../../hack/cluster/ferretdb.ts';
import { MONGO_EXERCISES } from '../../sandboxes/src/exercises/mongo.ts';
import type { ResultSet } from '../../sandboxes/src/grader/compare.ts';
import { runPipeline } from '../../sandboxes/src/grader/mongo.ts';
import { buildGradeServer } from '../../sandboxes/src/grader/server.ts';
import {
  decodeResult,
  encodeResult,
  referenceKey,
  referenceResults,
} from '../../sandboxes/src/grader/store.ts';
import { runSeed, type SeedPlan } from '../../sandboxes/src/seeder/run.ts';
import { credentialsDir } from '../harness/grader.ts';
import { GraderStore } from '../harness/grader-store.ts';

/**
 * MongoDB grading that does not depend on roles. The candidate's server is the e2e tier's FerretDB
 * (SCRAM authentication, no authorization: the candidate's user may read and write every database
 * on it). What must stay out of their reach — the hidden variants and the reference results — lives
 * in the grader store, another FerretDB they have no credential for (and, in a cluster, no route
 * to: operator/src/assessment/grader-store.test.ts). The candidate here uses exactly what their page
 * hands them; every forgery below was a pass when the reference ran live on their data.
 */
const VARIANTS = 2;
const TOKEN = 'mongo-integrity-token-0123456789';
const creds = {
  [KEYS.database]: 'sandbox',
  [KEYS.username]: 'candidate',
  [KEYS.password]: 'candidate-pw-0123456789',
  [KEYS.adminUsername]: 'root',
  [KEYS.adminPassword]: 'root-pw-0123456789',
  [KEYS.graderUsername]: 'grader',
  [KEYS.graderPassword]: 'grader-pw-0123456789',
};
const sandbox = new FerretServer({
  auth: { username: creds[KEYS.adminUsername], password: creds[KEYS.adminPassword] },
});
const store = new GraderStore();
const devices = MONGO_EXERCISES.find((e) => e.id === 'sessions-per-device')!;
const graded = MONGO_EXERCISES.filter((e) => !e.manual);
let dir: string;
let plan: SeedPlan;
let app: FastifyInstance;
let candidate: MongoClient;
/** The visible reference result of sessions-per-device, read before any tampering. */
let visible: ResultSet;

const request = (answer: string, exercise = devices): GradeRequest => ({
  sandbox: 'events',
  kind: 'mongo',
  reference: exercise.reference,
  collection: exercise.collection,
  options: exercise.grader,
  answer,
});
const grade = async (body: GradeRequest, server = app) => {
  const res = await server.inject({
    method: 'POST',
    url: '/v1/grade',
    headers: { authorization: `Bearer ${TOKEN}` },
    payload: body,
  });
  return { status: res.statusCode, body: res.json() };
};
const graderPlan = (withStore = true): GraderPlan => [
  {
    name: 'events',
    kind: 'mongo',
    host: '127.0.0.1',
    port: sandbox.port,
    credentials: dir,
    hiddenVariants: VARIANTS,
    ...(withStore && { store: store.location }),
  },
];
const seed = (p = plan) =>
  runSeed(p, { size: 'small', waitTimeoutMs: 30_000, log: () => {}, allowRolelessUsers: true });

beforeAll(async () => {
  await Promise.all([sandbox.start(), store.start()]);
  dir = credentialsDir(creds);
  plan = [
    {
      name: 'events',
      kind: 'mongo',
      host: '127.0.0.1',
      port: sandbox.port,
      dataset: 'retail@1',
      credentials: dir,
      hiddenVariants: VARIANTS,
      store: store.location,
      references: graded.map((e) => ({ task: e.id, exercise: e.id })),
    },
  ];
  await seed();
  app = await buildGradeServer({ plan: graderPlan(), token: () => TOKEN });
  // What the candidate page hands the candidate.
  const url = snippets('mongo', { host: '127.0.0.1', port: sandbox.port, tls: 'none' }, creds).url!;
  candidate = await new MongoClient(url, { serverSelectionTimeoutMS: 3000 }).connect();
  visible = await runPipeline(candidate, 'sandbox', devices.collection!, devices.reference);
}, 240_000);

afterAll(async () => {
  await candidate?.close();
  await app?.close();
  await Promise.all([sandbox.stop(), store.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('what the candidate can reach', () => {
  it('every reference result was stored at seed time, on their data and on each variant, none empty', async () => {
    const s = await new MongoClient(store.url).connect();
    try {
      for (const e of graded)
        for (const database of [
          'sandbox',
          hiddenVariantDatabase('sandbox', 1),
          hiddenVariantDatabase('sandbox', 2),
        ]) {
          const doc = await referenceResults(s).findOne({
            _id: referenceKey(database, e.collection!, e.reference),
          });
          expect(doc && decodeResult(doc.result).rows.length, `${e.id} on ${database}`).toBeGreaterThan(0);
        }
    } finally {
      await s.close();
    }
  });

  it('their server holds neither the hidden variants nor the reference results: only their own data', async () => {
    const names = (await candidate.db('admin').admin().listDatabases()).databases.map((d) => d.name);
    expect(names).toContain('sandbox');
    expect(
      names.filter((n) => n.startsWith('sandbox_hidden_') || n === GRADER_STORE.referencesDatabase),
    ).toEqual([]);
  });

  it('their credentials are refused by the grader store, whatever database they name', async () => {
    for (const authSource of ['sandbox', 'admin']) {
      const url = `mongodb://${creds[KEYS.username]}:${creds[KEYS.password]}@127.0.0.1:${store.ferret.port}/?authSource=${authSource}&directConnection=true&serverSelectionTimeoutMS=3000`;
      const c = new MongoClient(url);
      await expect(
        c
          .connect()
          .then(() => c.db(hiddenVariantDatabase('sandbox', 1)).collection('app_sessions').findOne()),
      ).rejects.toThrow(/Authentication failed/i);
      await c.close();
    }
    // Nor may anyone read it without credentials.
    const anonymous = new MongoClient(store.ferret.url, { serverSelectionTimeoutMS: 3000 });
    await expect(
      anonymous
        .connect()
        .then(() => anonymous.db(GRADER_STORE.referencesDatabase).collection('results').findOne()),
    ).rejects.toThrow(/auth|Unauthorized|not authorized/i);
    await anonymous.close();
  });
});

describe('forgeries on the candidate’s own server', () => {
  it('the reference passes before anything is touched', async () => {
    expect((await grade(request(devices.reference))).body).toMatchObject({ pass: true });
  });

  it('documents inserted to fake the reference result pass on their data but not on the hidden variants', async () => {
    // The candidate replaces app_sessions by the reference result itself and "answers" with a sort.
    const sessions = candidate.db('sandbox').collection('app_sessions');
    const backup = await sessions.find().toArray();
    const fake = visible.rows.map((r) => Object.fromEntries(visible.columns.map((c, i) => [c, r[i]])));
    try {
      await sessions.deleteMany({});
      await sessions.insertMany(fake as never[]);
      const forged = await grade(request('[{"$sort": {"sessions": -1, "_id": 1}}]'));
      expect(forged.status).toBe(200);
      expect(forged.body.pass).toBe(false);
      expect(forged.body.explanation).toMatch(/hidden variant 1/);
      // And a fake "reference result" written where a naive grader might look, on their server.
      await candidate
        .db(GRADER_STORE.referencesDatabase)
        .collection(GRADER_STORE.referencesCollection)
        .insertOne({
          _id: referenceKey('sandbox', devices.collection!, devices.reference),
          result: encodeResult({ columns: [], rows: [] }),
        } as never);
      expect((await grade(request('[{"$match": {"no_such_field": 1}}]'))).body.pass).toBe(false);
    } finally {
      await sessions.deleteMany({});
      await sessions.insertMany(backup);
      await candidate.db(GRADER_STORE.referencesDatabase).dropDatabase();
    }
    expect((await grade(request(devices.reference))).body).toMatchObject({ pass: true });
  });

  it('the forgery of issue 14: deleteMany on app_sessions, then an empty pipeline, fails', async () => {
    const sessions = candidate.db('sandbox').collection('app_sessions');
    const backup = await sessions.find().toArray();
    try {
      await sessions.deleteMany({});
      expect(await sessions.countDocuments()).toBe(0);
      const forged = await grade(request('[{"$match": {"no_such_field": 1}}]'));
      expect(forged.status).toBe(200);
      expect(forged.body).toMatchObject({ pass: false, actualRows: 0 });
      // The expected result is the one stored before the candidate could change anything.
      expect(forged.body.expectedRows).toBe(visible.rows.length);
      // A seed Job that runs again now (a retry) keeps the stored result: it never recomputes.
      await seed();
      expect((await grade(request('[{"$match": {"no_such_field": 1}}]'))).body.pass).toBe(false);
      // Every other exercise on the emptied collection fails the same way.
      for (const e of graded.filter((x) => x.collection === 'app_sessions'))
        expect((await grade(request('[{"$match": {"no_such_field": 1}}]', e))).body.pass, e.id).toBe(false);
    } finally {
      await sessions.insertMany(backup);
    }
    expect((await grade(request(devices.reference))).body).toMatchObject({ pass: true });
  });
});

describe('one huge document', () => {
  it('written by the candidate into their own data: refused as too large, and the grader serves the next answer', async () => {
    const sessions = candidate.db('sandbox').collection('app_sessions');
    // 6 MiB in one document: over the 5 MiB an answer may return, under FerretDB's 16 MiB.
    await sessions.insertOne({ _id: 'huge', note: 'x'.repeat(6 << 20) } as never);
    try {
      const huge = await grade(request('[{"$match": {"_id": "huge"}}]'));
      expect(huge.status).toBe(200);
      expect(huge.body).toMatchObject({ pass: false, error: 'TooLarge' });
      expect(huge.body.hint).toMatch(/more than 5 MiB of data in its first document/);
      // The next answer is graded (it fails: the huge document is one more session, of no device).
      const next = await grade(request(devices.reference));
      expect(next.status).toBe(200);
      expect(next.body.pass).toBe(false);
    } finally {
      await sessions.deleteOne({ _id: 'huge' } as never);
    }
    expect((await grade(request(devices.reference))).body).toMatchObject({ pass: true });
  });
});

describe('what the grader refuses rather than guess', () => {
  it('a reference not stored at seed time (the template changed since): 422, never a live run on their data', async () => {
    const res = await grade({ ...request('[{"$count": "n"}]'), reference: '[{"$count": "n"}]' });
    expect(res.status).toBe(422);
    expect(res.body.detail).toMatch(/no reference result was stored for this task on sandbox\.app_sessions/);
  });

  it('a MongoDB sandbox without a grader store in the plan: 422, naming the sandbox', async () => {
    const bare = await buildGradeServer({ plan: graderPlan(false), token: () => TOKEN });
    try {
      const res = await grade(request(devices.reference), bare);
      expect(res.status).toBe(422);
      expect(res.body.detail).toMatch(/MongoDB sandbox events has no grader store/);
    } finally {
      await bare.close();
    }
  });

  it('an empty reference result fails the seed, naming the task', async () => {
    const empty = [
      {
        ...plan[0]!,
        references: [
          { task: 'nothing', reference: '[{"$match": {"no_such_field": 1}}]', collection: 'app_sessions' },
        ],
      },
    ];
    await expect(seed(empty)).rejects.toThrow(
      // The variants' references are computed first (while the candidate's data loads).
      /seeding events .* failed: the reference of task nothing returns no documents on sandbox(_hidden_\d)?\.app_sessions/,
    );
  });
});
