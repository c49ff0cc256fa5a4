import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GRADER_STORE, type GraderStoreLocation, DB_CREDENTIAL_KEYS as KEYS } from '@epreuve/crds';
import { Binary, BSON, type MongoClient } from 'mongodb';
import type { ResultSet } from './compare.ts';

/**
 * The grader store (GRADER_STORE): a MongoDB-protocol server only the seed Job and the grader reach.
 * The seeder writes a MongoDB sandbox's hidden variants and reference results there; the grader
 * reads them. Shared by both so the key and the document shape are written once.
 */

/**
 * The key of a reference result: the sandbox database it was computed on, the collection and the
 * pipeline text (the grader receives the same text from the API with every answer).
 */
export function referenceKey(database: string, collection: string, reference: string): string {
  return createHash('sha256')
    .update(JSON.stringify([database, collection, reference]))
    .digest('hex');
}

/** A stored reference result. */
export interface StoredReference {
  _id: string;
  /** The task it was computed for (for people reading the store). */
  task: string;
  database: string;
  collection: string;
  reference: string;
  /** The ResultSet as one BSON blob (encodeResult): FerretDB 1.x stores no nested arrays. */
  result: Binary;
  computed_at: Date;
}

/** A result as stored: BSON, so values keep their types (dates, ObjectIds, int vs double). */
export const encodeResult = (result: ResultSet): Binary => new Binary(BSON.serialize({ result }));

/** Back to the ResultSet, deserialized as the driver deserializes a live result (its defaults). */
export const decodeResult = (stored: Binary): ResultSet =>
  (BSON.deserialize(stored.buffer) as { result: ResultSet }).result;

/** The store's reference results collection (a database of its own: answers never run there). */
export const referenceResults = (store: MongoClient) =>
  store.db(GRADER_STORE.referencesDatabase).collection<StoredReference>(GRADER_STORE.referencesCollection);

/** The store's connection string, from its Secret's keys mounted as files at `store.credentials`. */
export function graderStoreUrl(store: GraderStoreLocation): string {
  const read = (key: string) => {
    try {
      return readFileSync(join(store.credentials, key), 'utf8').trim();
    } catch {
      throw new Error(`grader store credential "${key}" missing from ${store.credentials}`);
    }
  };
  const user = encodeURIComponent(read(KEYS.adminUsername));
  const pwd = encodeURIComponent(read(KEYS.adminPassword));
  return `mongodb://${user}:${pwd}@${store.host}:${store.port}/?authSource=admin&directConnection=true`;
}
