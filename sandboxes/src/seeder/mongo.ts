import type { Db, MongoClient } from 'mongodb';
import type { Dataset } from '../datasets/catalog.ts';
import type { Size } from '../datasets/retail/v1.ts';
import type { Credentials } from './postgres.ts';

export interface Migration {
  version: number;
  name: string;
  up(db: Db, ctx: { dataset: Dataset; size: Size; log: (line: string) => void }): Promise<void>;
}

const BATCH = 1000;

/** Inserts documents with fixed _ids, ignoring ones already there: a re-run after a crash is safe. */
async function insertIdempotent(
  db: Db,
  collection: string,
  docs: Array<{ _id: unknown }>,
  log: (l: string) => void,
): Promise<void> {
  const started = Date.now();
  for (let i = 0; i < docs.length; i += BATCH) {
    try {
      await db.collection(collection).insertMany(docs.slice(i, i + BATCH) as never[], { ordered: false });
    } catch (err) {
      const e = err as { code?: number; writeErrors?: Array<{ code?: number }> };
      const onlyDuplicates =
        e.code === 11000 || (e.writeErrors?.length && e.writeErrors.every((w) => w.code === 11000));
      if (!onlyDuplicates) throw err;
    }
  }
  log(`mongo: loaded ${collection}: ${docs.length} documents in ${Date.now() - started} ms`);
}

/** retail@1's versioned migrations. Append only: an applied migration never changes. */
export const RETAIL_MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'load card_events',
    up: async (db, { dataset, size, log }) =>
      insertIdempotent(db, 'card_events', dataset.generate(size).card_events, log),
  },
  {
    version: 2,
    name: 'load app_sessions',
    up: async (db, { dataset, size, log }) =>
      insertIdempotent(db, 'app_sessions', dataset.generate(size).app_sessions, log),
  },
  {
    version: 3,
    name: 'index card_events by customer and time',
    up: async (db) => {
      await db.collection('card_events').createIndex({ customer_id: 1, at: 1 }, { name: 'customer_at' });
    },
  },
  {
    version: 4,
    name: 'index app_sessions by device',
    up: async (db) => {
      await db.collection('app_sessions').createIndex({ device: 1 }, { name: 'device' });
    },
  },
];

export interface MongoSeedOptions {
  database: string;
  dataset: Dataset;
  size: Size;
  candidate: Credentials;
  grader: Credentials;
  migrations?: Migration[];
  log?: (line: string) => void;
}

/**
 * Applies the dataset's migrations in order, each once: applied versions are recorded in the
 * `migrations` collection ({_id: version, name, applied_at}), so a re-run applies nothing.
 * Then creates the candidate (readWrite) and grader (read) users where the server manages users.
 */
export async function seedMongo(client: MongoClient, o: MongoSeedOptions): Promise<{ applied: number[] }> {
  const log = o.log ?? (() => {});
  const db = client.db(o.database);
  const migrations = db.collection<{ _id: number; name: string; applied_at: Date }>('migrations');
  const done = new Set((await migrations.find({}).toArray()).map((m) => m._id));
  const applied: number[] = [];
  for (const m of [...(o.migrations ?? RETAIL_MIGRATIONS)].sort((a, b) => a.version - b.version)) {
    if (done.has(m.version)) continue;
    log(`mongo: applying migration ${m.version} (${m.name})`);
    await m.up(db, { dataset: o.dataset, size: o.size, log });
    await migrations.insertOne({ _id: m.version, name: m.name, applied_at: new Date() });
    applied.push(m.version);
  }
  if (applied.length === 0) log(`mongo: all ${done.size} migrations already applied; nothing to do`);
  await ensureUsers(db, o, log);
  return { applied };
}

async function ensureUsers(db: Db, o: MongoSeedOptions, log: (l: string) => void): Promise<void> {
  const users = [
    { user: o.candidate.username, pwd: o.candidate.password, roles: [{ role: 'readWrite', db: o.database }] },
    { user: o.grader.username, pwd: o.grader.password, roles: [{ role: 'read', db: o.database }] },
  ];
  for (const u of users) {
    try {
      const exists = ((await db.command({ usersInfo: u.user })) as { users: unknown[] }).users.length > 0;
      await db.command(
        exists
          ? { updateUser: u.user, pwd: u.pwd, roles: u.roles }
          : { createUser: u.user, pwd: u.pwd, roles: u.roles },
      );
    } catch (err) {
      // FerretDB v1 on SQLite (the test server) has no user management; real MongoDB does.
      if ((err as { code?: number }).code === 59) {
        log('mongo: this server has no user management; candidate and grader users skipped');
        return;
      }
      throw err;
    }
  }
  log(`mongo: users ${o.candidate.username} (readWrite) and ${o.grader.username} (read) ready`);
}
