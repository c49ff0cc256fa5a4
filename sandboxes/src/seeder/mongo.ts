import { ALLOW_ROLELESS_USERS_ENV, hiddenVariantDatabase } from '@epreuve/crds';
import type { Db, MongoClient } from 'mongodb';
import type { Dataset } from '../datasets/catalog.ts';
import type { Size } from '../datasets/retail/v1.ts';
import type { ResultSet } from '../grader/compare.ts';
import { runPipeline } from '../grader/mongo.ts';
import { encodeResult, referenceKey, referenceResults } from '../grader/store.ts';
import type { Credentials } from './postgres.ts';

export interface Migration {
  version: number;
  name: string;
  up(
    db: Db,
    ctx: { dataset: Dataset; size: Size; variant: number; log: (line: string) => void },
  ): Promise<void>;
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
    up: async (db, { dataset, size, variant, log }) =>
      insertIdempotent(db, 'card_events', dataset.generate(size, variant).card_events, log),
  },
  {
    version: 2,
    name: 'load app_sessions',
    up: async (db, { dataset, size, variant, log }) =>
      insertIdempotent(db, 'app_sessions', dataset.generate(size, variant).app_sessions, log),
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
  /** 0 (default): the candidate's data. Otherwise a hidden variant: another seed, no users. */
  variant?: number;
  /**
   * Whether users may be created without roles (or skipped) on a server that implements none
   * (FerretDB 1.x): a local cluster's explicit choice (`sandboxes.mongo.allowRolelessUsers`).
   */
  allowRolelessUsers?: boolean;
}

/**
 * Applies the dataset's migrations in order, each once: applied versions are recorded in the
 * `migrations` collection ({_id: version, name, applied_at}), so a re-run applies nothing.
 * Then, for the candidate's data, creates the candidate (readWrite) and grader (read) users (see
 * ensureUsers for servers without roles). A hidden variant lives in the grader store, whose only
 * user is the store's own: it gets no users.
 */
export async function seedMongo(client: MongoClient, o: MongoSeedOptions): Promise<{ applied: number[] }> {
  const log = o.log ?? (() => {});
  const applied = await applyMigrations(client, o);
  if (!o.variant) await ensureUsers(client.db(o.database), o, log);
  return { applied };
}

/**
 * The data part of seedMongo, without users: what hack/images/ferretdb/preload.ts runs at image
 * build time to ship a dataset already loaded (the seed Job then finds every migration applied).
 * Returns the versions applied now.
 */
export async function applyMigrations(
  client: MongoClient,
  o: Pick<MongoSeedOptions, 'database' | 'dataset' | 'size' | 'migrations' | 'log' | 'variant'>,
): Promise<number[]> {
  const log = o.log ?? (() => {});
  const db = client.db(o.database);
  const migrations = db.collection<{ _id: number; name: string; applied_at: Date }>('migrations');
  const done = new Set((await migrations.find({}).toArray()).map((m) => m._id));
  const applied: number[] = [];
  for (const m of [...(o.migrations ?? RETAIL_MIGRATIONS)].sort((a, b) => a.version - b.version)) {
    if (done.has(m.version)) continue;
    log(`mongo: applying migration ${m.version} (${m.name})`);
    await m.up(db, { dataset: o.dataset, size: o.size, variant: o.variant ?? 0, log });
    await migrations.insertOne({ _id: m.version, name: m.name, applied_at: new Date() });
    applied.push(m.version);
  }
  if (applied.length === 0) log(`mongo: all ${done.size} migrations already applied; nothing to do`);
  return applied;
}

/**
 * Loads each hidden variant into its own database (`hiddenVariantDatabase`) of `store`, the grader
 * store: a server of its own that the candidate's network cannot reach and the candidate has no
 * credential for, so no role (FerretDB has none) is needed to keep the variants out of reach.
 */
export async function seedHiddenMongoVariants(
  store: MongoClient,
  o: Omit<MongoSeedOptions, 'variant' | 'size'> & { count: number },
): Promise<string[]> {
  const names: string[] = [];
  for (let i = 1; i <= o.count; i++) {
    const database = hiddenVariantDatabase(o.database, i);
    await seedMongo(store, { ...o, database, size: 'small', variant: i });
    names.push(database);
  }
  return names;
}

/** A reference pipeline whose result the grader compares answers with. */
export interface ReferenceSpec {
  /** The task it grades (for messages only). */
  task: string;
  collection: string;
  reference: string;
}

/**
 * Computes each reference on `database` of `source` and stores the result in the grader store,
 * once: a result already stored is kept (the seed Job runs before the candidate can connect; a
 * re-run after they have must not recompute on data they may have changed). An empty result fails
 * the seed: it would pass an answer that returns nothing, e.g. after the candidate empties the
 * collection.
 */
export async function storeReferenceResults(
  source: MongoClient,
  database: string,
  store: MongoClient,
  references: ReferenceSpec[],
  log: (line: string) => void = () => {},
): Promise<{ computed: number }> {
  const results = referenceResults(store);
  let computed = 0;
  for (const r of references) {
    const _id = referenceKey(database, r.collection, r.reference);
    if (await results.findOne({ _id }, { projection: { _id: 1 } })) continue;
    let result: ResultSet;
    try {
      result = await runPipeline(source, database, r.collection, r.reference, {
        timeoutMs: 60_000,
        docCap: 100_000,
        maxBytes: 8 << 20,
      });
    } catch (err) {
      throw new Error(
        `the reference of task ${r.task} does not run on ${database}.${r.collection}: ${(err as Error).message}`,
      );
    }
    if (result.rows.length === 0)
      throw new Error(
        `the reference of task ${r.task} returns no documents on ${database}.${r.collection}: an empty reference would pass an answer that returns nothing; fix the reference or the dataset`,
      );
    await results.insertOne({
      _id,
      task: r.task,
      database,
      collection: r.collection,
      reference: r.reference,
      result: encodeResult(result),
      computed_at: new Date(),
    });
    computed++;
  }
  log(
    `mongo: reference results of ${references.length} task(s) on ${database} stored in the grader store (${computed} computed now)`,
  );
  return { computed };
}

/** MongoDB error codes the user commands may answer with. */
const COMMAND_NOT_FOUND = 59;
const NOT_IMPLEMENTED = 238;

/**
 * What to do when `createUser`/`updateUser` fails. 59: the server has no user management at all
 * (FerretDB v1 without authentication) — skip users. 238 with roles: the server authenticates but
 * has no authorization (FerretDB 1.x with its new authentication) — create the user without roles so
 * it can still log in (nothing is enforced there anyway). Anything else, or 238 without roles, fails.
 * Driven by the server's answer, not its name, so a server that implements roles gets them. Both
 * fallbacks need the explicit opt-in (`rolelessRefused` otherwise).
 */
export function onUserCommandError(
  code: number | undefined,
  withRoles: boolean,
): 'skip-users' | 'retry-without-roles' | 'fail' {
  if (code === COMMAND_NOT_FOUND) return 'skip-users';
  if (code === NOT_IMPLEMENTED && withRoles) return 'retry-without-roles';
  return 'fail';
}

/** The warning for a user created without roles; names the user, the server and what it means. */
export function rolesNotEnforcedWarning(user: string, meant: string, server: string): string {
  return `WARNING mongo: user "${user}" has no roles: ${server} does not implement roles (code ${NOT_IMPLEMENTED}), so roles are not enforced by this server and "${user}" (meant: ${meant}) may read and write every database`;
}

/**
 * Why the seed stops on a server without roles when the opt-in is off: the candidate's user could
 * read and write every database there. Names the setting that accepts it on a local cluster.
 */
export function rolelessRefused(server: string, code: number): string {
  const what =
    code === COMMAND_NOT_FOUND
      ? `${server} has no user management (code ${COMMAND_NOT_FOUND}): anyone who reaches it may read and write every database`
      : `${server} does not implement roles (code ${NOT_IMPLEMENTED}): the candidate's user would read and write every database`;
  return `${what}. Refusing to seed users without roles. On a local cluster where that is accepted, set the chart value sandboxes.mongo.allowRolelessUsers=true (${ALLOW_ROLELESS_USERS_ENV}=true on the seed Job); in production, run a MongoDB that enforces roles.`;
}

/** "FerretDB v1.24.0" or "MongoDB 7.0.1", from buildInfo; only asked for messages. */
async function serverName(db: Db): Promise<string> {
  try {
    const info = (await db.admin().command({ buildInfo: 1 })) as {
      version?: string;
      ferretdbVersion?: string;
    };
    return info.ferretdbVersion
      ? `FerretDB ${info.ferretdbVersion}`
      : `MongoDB ${info.version ?? '(unknown version)'}`;
  } catch {
    return 'this server';
  }
}

/**
 * Creates the candidate (readWrite) and grader (read) users, or updates their passwords and roles
 * when they exist (a re-run, or a rotated Secret). See onUserCommandError for servers without roles.
 */
export async function ensureUsers(
  db: Db,
  o: Pick<MongoSeedOptions, 'database' | 'grader' | 'allowRolelessUsers'> & { candidate?: Credentials },
  log: (l: string) => void,
): Promise<void> {
  const users = [
    ...(o.candidate
      ? [
          {
            user: o.candidate.username,
            pwd: o.candidate.password,
            role: 'readWrite',
            meant: `readWrite on ${o.database}`,
          },
        ]
      : []),
    { user: o.grader.username, pwd: o.grader.password, role: 'read', meant: `read on ${o.database}` },
  ];
  const unenforced: string[] = [];
  const noUserManagement = async () => {
    if (!o.allowRolelessUsers) throw new Error(rolelessRefused(await serverName(db), COMMAND_NOT_FOUND));
    log('mongo: this server has no user management; candidate and grader users skipped');
  };
  for (const u of users) {
    let exists: boolean;
    try {
      exists = ((await db.command({ usersInfo: u.user })) as { users: unknown[] }).users.length > 0;
    } catch (err) {
      if (onUserCommandError((err as { code?: number }).code, false) === 'skip-users')
        return noUserManagement();
      throw err;
    }
    const command = (roles: unknown[]) =>
      exists ? { updateUser: u.user, pwd: u.pwd, roles } : { createUser: u.user, pwd: u.pwd, roles };
    try {
      await db.command(command([{ role: u.role, db: o.database }]));
    } catch (err) {
      const decision = onUserCommandError((err as { code?: number }).code, true);
      if (decision === 'skip-users') return noUserManagement();
      if (decision === 'fail') throw err;
      if (!o.allowRolelessUsers) throw new Error(rolelessRefused(await serverName(db), NOT_IMPLEMENTED));
      try {
        await db.command(command([]));
      } catch (retry) {
        throw new Error(
          `user "${u.user}": the server refused roles (code ${NOT_IMPLEMENTED}), then the user without roles: ${(retry as Error).message}`,
        );
      }
      log(rolesNotEnforcedWarning(u.user, u.meant, await serverName(db)));
      unenforced.push(u.user);
    }
  }
  const names = users.map((u) => u.user).join(' and ');
  log(
    unenforced.length
      ? `mongo: users ${names} ready (roles not enforced by this server)`
      : `mongo: users ${users.map((u) => `${u.user} (${u.role})`).join(' and ')} ready`,
  );
}
