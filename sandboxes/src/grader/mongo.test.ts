import { BSON, type MongoClient } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { parsePipeline, runPipeline } from './mongo.ts';
import { AnswerError } from './sql.ts';

/** A fake client (unit tier only): its cursor yields the given raw BSON documents. */
function fakeClient(docs: Uint8Array[]) {
  const seen: { options?: Record<string, unknown>; closed: boolean; yielded: number } = {
    closed: false,
    yielded: 0,
  };
  const cursor = {
    async *[Symbol.asyncIterator]() {
      for (const d of docs) {
        seen.yielded++;
        yield d;
      }
    },
    close: async () => {
      seen.closed = true;
    },
  };
  const client = {
    db: () => ({
      collection: () => ({
        aggregate: (_pipeline: unknown, options: Record<string, unknown>) => {
          seen.options = options;
          return cursor;
        },
      }),
    }),
  } as unknown as MongoClient;
  return { client, seen };
}
const run = (docs: Uint8Array[], maxBytes = 1000) => {
  const fake = fakeClient(docs);
  return { fake, result: runPipeline(fake.client, 'db', 'c', '[{"$match": {}}]', { maxBytes }) };
};

describe('runPipeline byte cap', () => {
  it('asks for small raw replies: batchSize 100, raw BSON, maxTimeMS', async () => {
    const { fake, result } = run([BSON.serialize({ _id: 1, n: 2 })]);
    expect(await result).toEqual({ columns: ['_id', 'n'], rows: [[1, 2]] });
    expect(fake.seen.options).toMatchObject({ batchSize: 100, raw: true, maxTimeMS: 5000 });
  });

  it('refuses one document over the cap on its raw size, before deserializing it', async () => {
    // Not even valid BSON: deserializing it would throw something else than TooLarge.
    const huge = new Uint8Array(5000).fill(0xff);
    const { fake, result } = run([huge, BSON.serialize({ _id: 2 })]);
    const err = await result.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AnswerError);
    expect(err).toMatchObject({ reason: 'TooLarge' });
    expect((err as Error).message).toMatch(/more than 1 KiB of data in its first document/);
    expect((err as AnswerError).fr).toMatch(/plus de 1 Kio de données dès son premier document/);
    expect(fake.seen).toMatchObject({ closed: true, yielded: 1 });
  });

  it('refuses when the running total passes the cap, document by document', async () => {
    const doc = BSON.serialize({ _id: 'x', pad: 'y'.repeat(300) });
    const { fake, result } = run([doc, doc, doc, doc, doc]);
    const err = await result.catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: 'TooLarge' });
    expect((err as Error).message).not.toMatch(/first document/);
    expect(fake.seen).toMatchObject({ closed: true, yielded: Math.floor(1000 / doc.byteLength) + 1 });
  });
});

describe('parsePipeline refusals', () => {
  it.each([
    ['not JSON', '[{', /^Your pipeline is not valid JSON/, /^Votre pipeline n’est pas du JSON valide/],
    [
      'not an array',
      '{}',
      /^An aggregation pipeline is a JSON array/,
      /^Un pipeline d’agrégation est un tableau JSON/,
    ],
    [
      'a stage that writes',
      '[{"$out": "x"}]',
      /^Stage 1 \(\$out\) is not allowed/,
      /^L’étape 1 \(\$out\) n’est pas autorisée/,
    ],
    [
      'server-side JavaScript',
      '[{"$match": {"$where": "1"}}]',
      /^\$where is not allowed/,
      /^\$where n’est pas autorisé/,
    ],
  ])('says %s in English and in French', (_what, text, en, fr) => {
    const err = (() => {
      try {
        parsePipeline(text);
      } catch (e) {
        return e as AnswerError;
      }
      throw new Error('not refused');
    })();
    expect(err.message).toMatch(en);
    expect(err.fr).toMatch(fr);
  });
});
