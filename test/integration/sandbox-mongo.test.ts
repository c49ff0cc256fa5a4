import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { resolveDataset } from '../../sandboxes/src/datasets/catalog.ts';
import { MONGO_EXERCISES } from '../../sandboxes/src/exercises/mongo.ts';
import { gradeMongo } from '../../sandboxes/src/grader/index.ts';
import { runPipeline } from '../../sandboxes/src/grader/mongo.ts';
import { seedMongo } from '../../sandboxes/src/seeder/mongo.ts';

/** The MongoDB sandbox against a real wire-protocol server (FerretDB) through the official driver. */
const url = inject('mongoUrl');
const DB = `sandbox_mongo_${process.pid}`;
// The shared FerretDB has no user management: the seeder skips users only with the local opt-in.
const creds = {
  candidate: { username: 'candidate', password: 'c' },
  grader: { username: 'grader', password: 'g' },
  allowRolelessUsers: true,
};
const dataset = resolveDataset('retail@1');
let client: MongoClient;
const log: string[] = [];

beforeAll(async () => {
  client = await new MongoClient(url).connect();
  const res = await seedMongo(client, {
    database: DB,
    dataset,
    size: 'small',
    ...creds,
    log: (l) => log.push(l),
  });
  expect(res.applied).toEqual([1, 2, 3, 4]);
}, 120_000);
afterAll(async () => {
  await client?.db(DB).dropDatabase();
  await client?.close();
});

const counts = async () => ({
  card_events: await client.db(DB).collection('card_events').countDocuments(),
  app_sessions: await client.db(DB).collection('app_sessions').countDocuments(),
});

describe('seeder (MongoDB)', () => {
  it('loaded the collections, recorded each migration once, and printed progress', async () => {
    const data = dataset.generate('small');
    expect(await counts()).toEqual({
      card_events: data.card_events.length,
      app_sessions: data.app_sessions.length,
    });
    const migrations = await client.db(DB).collection('migrations').find().sort({ _id: 1 }).toArray();
    expect(migrations.map((m) => m._id)).toEqual([1, 2, 3, 4]);
    expect(log).toContain('mongo: applying migration 1 (load card_events)');
    expect(log.some((l) => /loaded card_events: \d+ documents/.test(l))).toBe(true);
    expect(log).toContain('mongo: this server has no user management; candidate and grader users skipped');
  });

  it('applies nothing when run again, and changes nothing', async () => {
    const before = await client.db(DB).collection('migrations').find().sort({ _id: 1 }).toArray();
    const countsBefore = await counts();
    const again = await seedMongo(client, {
      database: DB,
      dataset,
      size: 'small',
      ...creds,
      log: (l) => log.push(l),
    });
    expect(again.applied).toEqual([]);
    expect(log).toContain('mongo: all 4 migrations already applied; nothing to do');
    expect(await client.db(DB).collection('migrations').find().sort({ _id: 1 }).toArray()).toEqual(before);
    expect(await counts()).toEqual(countsBefore);
  });

  it('resumes a migration interrupted half way without duplicating documents', async () => {
    const half = `${DB}_half`;
    const events = dataset.generate('small').card_events;
    await client
      .db(half)
      .collection('card_events')
      .insertMany(events.slice(0, 500) as never[]);
    const res = await seedMongo(client, { database: half, dataset, size: 'small', ...creds });
    expect(res.applied).toEqual([1, 2, 3, 4]);
    expect(await client.db(half).collection('card_events').countDocuments()).toBe(events.length);
    await client.db(half).dropDatabase();
  });
});

describe('MongoDB exercises', () => {
  const graded = MONGO_EXERCISES.filter((e) => !e.manual);

  it('has at least 6, including a migration task and an embed-vs-reference modelling question', () => {
    expect(MONGO_EXERCISES.length).toBeGreaterThanOrEqual(6);
    expect(MONGO_EXERCISES.some((e) => e.topics.includes('migration'))).toBe(true);
    const modelling = MONGO_EXERCISES.find((e) => e.topics.includes('modelling'));
    expect(modelling?.manual?.rubric).toBeTruthy();
    for (const e of MONGO_EXERCISES) expect(e.prompt.en && e.prompt.fr, e.id).toBeTruthy();
  });

  describe.each(graded.map((e) => [e.id, e] as const))('%s', (_id, exercise) => {
    it('its reference pipeline passes, with a non-trivial result', async () => {
      const g = await gradeMongo(client, DB, exercise, exercise.reference);
      expect(g.explanation).toMatch(/^Correct/);
      expect(g.expectedRows).toBeGreaterThan(1);
    });
    it.each(exercise.wrongAnswers.map((w, i) => [i + 1, w] as const))(
      'wrong answer %i fails with a useful explanation',
      async (_i, wrong) => {
        const g = await gradeMongo(client, DB, exercise, wrong.answer);
        expect(g.pass).toBe(false);
        expect(g.explanation).toMatch(wrong.explains);
      },
    );
  });
});

describe('hostile pipelines are refused, data unchanged, error clear', () => {
  const exercise = MONGO_EXERCISES[0]!;
  const hostile: Array<[string, string, RegExp]> = [
    ['$out', '[{"$out": "app_sessions"}]', /Stage 1 \(\$out\) is not allowed/],
    ['$merge', '[{"$match": {}}, {"$merge": {"into": "x"}}]', /Stage 2 \(\$merge\) is not allowed/],
    ['$where', '[{"$match": {"$where": "sleep(100000)"}}]', /\$where is not allowed/],
    [
      '$function',
      '[{"$addFields": {"x": {"$function": {"body": "1", "args": [], "lang": "js"}}}}]',
      /\$function is not allowed/,
    ],
    ['not JSON', "[{$match: {device: 'ios'}}]", /not valid JSON/],
    ['not an array', '{"$match": {}}', /JSON array of stages/],
    ['a stage with two operators', '[{"$match": {}, "$limit": 1}]', /exactly one \$-operator/],
    ['a huge answer', `[{"$match": {"x": "${'y'.repeat(30_000)}"}}]`, /characters; the limit is 20,000/],
    ['an empty answer', '   ', /empty/],
  ];
  it.each(hostile)('%s', async (_label, answer, explains) => {
    const before = await counts();
    const g = await gradeMongo(client, DB, exercise, answer);
    expect(g.pass).toBe(false);
    expect(g.explanation).toMatch(explains);
    expect(await counts()).toEqual(before);
  });

  // Red team 6: FerretDB applies maxTimeMS to the first batch only, and a streaming pipeline over
  // documents the candidate inserted ran on, batch after batch, far past the answer's time limit.
  it('stops a pipeline at its time limit, every batch included, and the client still serves', async () => {
    const scratch = client.db(DB).collection(`slow_${process.pid}`);
    await scratch.insertMany(Array.from({ length: 10_000 }, (_, i) => ({ i, n: i % 97 })));
    const stages = Array.from({ length: 150 }, (_, k) => ({
      $addFields: { [`f${k % 5}`]: { $sum: ['$n', k] } },
    }));
    const started = performance.now();
    await expect(
      runPipeline(client, DB, scratch.collectionName, JSON.stringify(stages), {
        timeoutMs: 1000,
        docCap: 20_000,
      }),
    ).rejects.toMatchObject({ reason: 'Timeout', message: 'Your pipeline was stopped after 1 s.' });
    expect(performance.now() - started).toBeLessThan(4000);
    const next = await runPipeline(client, DB, scratch.collectionName, '[{"$match": {"i": 7}}]');
    expect(next.rows).toHaveLength(1);
    await scratch.drop();
  });

  it('caps the number of documents returned', async () => {
    await expect(
      runPipeline(client, DB, 'app_sessions', '[{"$unwind": "$screens"}]', { docCap: 50 }),
    ).rejects.toThrow(/more than 50 documents/);
  });
});
