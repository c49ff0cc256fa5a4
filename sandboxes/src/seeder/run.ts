import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ALLOW_ROLELESS_USERS_ENV,
  type DbCredentials,
  dbCredentials,
  type GraderStoreLocation,
  hiddenVariantDatabase,
  DB_CREDENTIAL_KEYS as KEYS,
  SEED_PLAN_ENV,
  type SeedPlan,
  type SeedPlanEntry,
  seedPlanSchema,
} from '@epreuve/crds';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { resolveDataset } from '../datasets/catalog.ts';
import { prebuiltSha256 } from '../datasets/prebuilt.ts';
import { findExercise } from '../exercises/index.ts';
import { graderStoreUrl } from '../grader/store.ts';
import { preparedOnce, withHiddenSalt } from './generated.ts';
import { type ReferenceSpec, seedHiddenMongoVariants, seedMongo, storeReferenceResults } from './mongo.ts';
import { seedPostgresServer } from './postgres.ts';

export type { SeedPlan };

export interface SeedRunOptions {
  size: 'small' | 'standard';
  /** Give up waiting for a database after this long. */
  waitTimeoutMs: number;
  log: (line: string) => void;
  /** MongoDB users without roles on a server that has none: a local cluster's opt-in (`rolelessOptIn`). */
  allowRolelessUsers?: boolean;
  /** The image's prebuilt tables (datasets/prebuilt.ts), read instead of generated when usable. */
  prebuiltDir?: string;
  /** The hidden variants' salt (generated.ts withHiddenSalt); default: 16 random bytes per run. */
  hiddenSalt?: Buffer;
}

/** The seed Job's opt-in for role-less MongoDB users, from its environment; anything but true/false fails. */
export function rolelessOptIn(env: NodeJS.ProcessEnv): boolean {
  const v = env[ALLOW_ROLELESS_USERS_ENV];
  if (v === undefined || v === '' || v === 'false') return false;
  if (v === 'true') return true;
  throw new Error(`${ALLOW_ROLELESS_USERS_ENV} must be true or false, got "${v}"`);
}

/**
 * The reference pipelines of a MongoDB sandbox's tasks, resolved as the API resolves them
 * (api/src/services/grading.ts gradingOf: the template's own reference and collection, else the
 * catalogue exercise's), so the grader finds the result under the text the API sends it.
 */
export function resolveReferences(entry: Pick<SeedPlanEntry, 'name' | 'references'>): ReferenceSpec[] {
  return (entry.references ?? []).flatMap((t) => {
    const ex = t.exercise ? findExercise(t.exercise) : undefined;
    if (ex && (ex.manual || ex.kind !== 'mongo') && !t.reference) return [];
    const reference = t.reference ?? ex?.reference;
    const collection = t.collection ?? ex?.collection;
    if (!reference || !collection)
      throw new Error(
        `task ${t.task} on sandbox ${entry.name}: no ${reference ? 'collection' : 'reference pipeline'} (neither the template nor a catalogue exercise gives one)`,
      );
    return [{ task: t.task, reference, collection }];
  });
}

/** Parses the plan; the error names the offending entry and field. */
export function parsePlan(json: string | undefined): SeedPlan {
  if (!json)
    throw new Error(`${SEED_PLAN_ENV} is not set: it should hold the JSON seed plan the operator writes`);
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new Error(`${SEED_PLAN_ENV} is not valid JSON: ${(err as Error).message}`);
  }
  const res = seedPlanSchema.safeParse(raw);
  if (!res.success) {
    throw new Error(
      `${SEED_PLAN_ENV} is invalid: ${res.error.issues.map((i) => `[${i.path.join('.')}] ${i.message}`).join('; ')}`,
    );
  }
  for (const entry of res.data) {
    resolveDataset(entry.dataset); // fails early, naming the known datasets
    if (entry.collectionSource) resolveDataset(entry.collectionSource.dataset);
    if (entry.kind === 'mongo') resolveReferences(entry); // and the tasks without a reference
  }
  return res.data;
}

/** The sandbox Secret's keys, mounted as one file each in `dir`. */
export function readCredentials(dir: string): DbCredentials {
  const read = (key: string) => {
    try {
      return readFileSync(join(dir, key), 'utf8').trim();
    } catch {
      throw new Error(`credential "${key}" missing from ${dir}`);
    }
  };
  return dbCredentials.parse(Object.fromEntries(Object.values(KEYS).map((k) => [k, read(k)])));
}

/** Retries `attempt` with exponential backoff (0.5 s → 2 s) until it succeeds or time runs out. */
export async function waitFor<T>(
  what: string,
  attempt: (n: number) => Promise<T>,
  timeoutMs: number,
  log: (l: string) => void,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      // Short and capped at 2 s: a database's Service answers a second or two after its pod starts,
      // and every second waited here is a second the candidate waits.
      const delay = Math.min(2000, 500 * 2 ** (n - 1));
      if (Date.now() + delay > deadline)
        throw new Error(
          `${what} did not become reachable within ${Math.round(timeoutMs / 1000)} s: ${(err as Error).message}`,
        );
      log(`waiting for ${what}: ${(err as Error).message} (attempt ${n}, next in ${delay / 1000} s)`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * Seeds every sandbox of the plan, all at once (each is its own server, so loading them side by
 * side shortens time to Ready). Every sandbox runs to its end; then the failures, each naming its
 * sandbox, are thrown together.
 */
export async function runSeed(plan: SeedPlan, o: SeedRunOptions): Promise<void> {
  // One salt per run: a MongoDB variant's collections are asked for more than once, and must agree.
  const hiddenSalt = o.hiddenSalt ?? randomBytes(16);
  const results = await Promise.allSettled(plan.map((entry) => seedOne(entry, { ...o, hiddenSalt })));
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
  if (failures.length > 0) throw new Error(failures.join('; '));
}

async function seedOne(entry: SeedPlanEntry, o: SeedRunOptions & { hiddenSalt: Buffer }): Promise<void> {
  // The tables are prepared when a load needs them (read from the image's prebuilt file, else
  // generated): the project's PostgreSQL image preloads the standard data (its marker verified by
  // seedPostgres), and its FerretDB image the MongoDB collections, so usually none does.
  const prebuilt = o.prebuiltDir ? { dir: o.prebuiltDir, log: o.log } : undefined;
  const dataset = withHiddenSalt(preparedOnce(resolveDataset(entry.dataset), prebuilt, o.log), o.hiddenSalt);
  const creds = readCredentials(entry.credentials);
  const candidate = { username: creds[KEYS.username], password: creds[KEYS.password] };
  const grader = { username: creds[KEYS.graderUsername], password: creds[KEYS.graderPassword] };
  const where = `${entry.name} (${entry.kind} at ${entry.host}:${entry.port})`;
  const started = Date.now();
  try {
    if (entry.kind === 'postgres') {
      const admin = adminPostgres(entry, creds);
      await waitFor(
        where,
        async (n) => {
          const c = new pg.Client({ ...admin, connectionTimeoutMillis: probeTimeoutMs(n) });
          c.on('error', () => {}); // a database still starting: the attempt fails and is retried
          await c.connect();
          await c.end();
        },
        o.waitTimeoutMs,
        o.log,
      );
      // The candidate's data, the hidden variants and the data API's copy (for the checks of a
      // collection task, grader-only), side by side.
      await seedPostgresServer(admin, {
        dataset,
        size: o.size,
        candidate,
        grader,
        log: o.log,
        // A preloaded database's rows are checked against the prebuilt file's header (no parse).
        expectedTables: (d, size, variant) =>
          o.prebuiltDir ? prebuiltSha256(o.prebuiltDir, d, size, variant) : undefined,
        hiddenVariants: entry.hiddenVariants,
        collectionSource: entry.collectionSource && {
          dataset: preparedOnce(resolveDataset(entry.collectionSource.dataset), prebuilt, o.log),
          size: entry.collectionSource.size,
        },
      });
    } else {
      const references = resolveReferences(entry);
      if (!entry.store && (entry.hiddenVariants || references.length > 0))
        // Never on the candidate's own server, where nothing may enforce roles (FerretDB).
        throw new Error(
          'hidden variants and reference results of a MongoDB sandbox need the grader store (store in the seed plan)',
        );
      const url = adminMongoUrl(entry, creds);
      // A new client per attempt: a client whose first connection timed out stays closed
      // ("Topology is closed") however often it is retried.
      const client = await connectMongo(url, where, o.waitTimeoutMs, o.log);
      try {
        const target = {
          database: creds[KEYS.database],
          dataset,
          candidate,
          grader,
          log: o.log,
          allowRolelessUsers: o.allowRolelessUsers,
        };
        // The grader store fills while the candidate's data loads (the variants need none of it);
        // only the reference results on the candidate's data wait for that load.
        const visible = seedMongo(client, { ...target, size: o.size });
        const stored = entry.store
          ? seedGraderStore(client, entry.store, {
              ...target,
              where,
              references,
              hiddenVariants: entry.hiddenVariants ?? 0,
              waitTimeoutMs: o.waitTimeoutMs,
              visibleLoaded: visible,
            })
          : undefined;
        const outcomes = await Promise.allSettled([visible, stored]);
        const failed = outcomes.find((r) => r.status === 'rejected');
        if (failed) throw failed.reason;
      } finally {
        await client.close();
      }
    }
  } catch (err) {
    throw new Error(`seeding ${where} failed: ${(err as Error).message}`);
  }
  o.log(`${entry.name}: seeded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/**
 * How long attempt `n` waits for a connection: 1 s, then 2 s, … up to 5 s. The seed Job starts
 * with its databases, whose Services drop connections until their pods are ready: a first attempt
 * that waited 5 s kept the seed waiting seconds after the database answered (a preloaded
 * PostgreSQL is ready 1–4 s after it starts).
 */
export const probeTimeoutMs = (n: number) => Math.min(5000, 1000 * n);

/** An authenticated client of a MongoDB-protocol server, once it answers (a new client per attempt). */
async function connectMongo(
  url: string,
  where: string,
  timeoutMs: number,
  log: (l: string) => void,
): Promise<MongoClient> {
  return waitFor(
    where,
    async (n) => {
      // The short wait is for the ping only: the client the seed goes on with has the full 5 s.
      const probe = new MongoClient(url, { serverSelectionTimeoutMS: probeTimeoutMs(n) });
      probe.on('error', () => {});
      try {
        await probe.db('admin').command({ ping: 1 });
      } finally {
        await probe.close().catch(() => {});
      }
      const attempt = new MongoClient(url, { serverSelectionTimeoutMS: 5000 });
      attempt.on('error', () => {});
      try {
        await attempt.db('admin').command({ ping: 1 });
        return attempt;
      } catch (err) {
        await attempt.close().catch(() => {});
        throw err;
      }
    },
    timeoutMs,
    log,
  );
}

/**
 * Fills the grader store of a MongoDB sandbox: the hidden variants and the reference result of
 * each task on each, then — once the candidate's data is loaded, before the candidate can connect —
 * the reference results on the candidate's data. The store's credentials are its Secret's keys,
 * mounted like a sandbox's.
 */
async function seedGraderStore(
  sandbox: MongoClient,
  store: GraderStoreLocation,
  o: Omit<Parameters<typeof seedMongo>[1], 'size'> & {
    where: string;
    references: ReferenceSpec[];
    hiddenVariants: number;
    waitTimeoutMs: number;
    /** Settles when the candidate's data is loaded: their references are computed after it. */
    visibleLoaded: Promise<unknown>;
  },
): Promise<void> {
  const log = o.log ?? (() => {});
  const client = await connectMongo(
    graderStoreUrl(store),
    `the grader store of ${o.where} (${store.host}:${store.port})`,
    o.waitTimeoutMs,
    log,
  );
  try {
    if (o.hiddenVariants > 0) await seedHiddenMongoVariants(client, { ...o, count: o.hiddenVariants });
    for (let i = 1; i <= o.hiddenVariants; i++)
      await storeReferenceResults(client, hiddenVariantDatabase(o.database, i), client, o.references, log);
    await o.visibleLoaded;
    await storeReferenceResults(sandbox, o.database, client, o.references, log);
  } finally {
    await client.close();
  }
}

/** How the seed and rotate Jobs reach a sandbox's PostgreSQL as its admin. */
export function adminPostgres(entry: SeedPlanEntry, creds: Record<string, string>): pg.ClientConfig {
  return {
    host: entry.host,
    port: entry.port,
    user: creds[KEYS.adminUsername],
    password: creds[KEYS.adminPassword],
    database: creds[KEYS.database],
    connectionTimeoutMillis: 5000,
  };
}

/** How the seed and rotate Jobs reach a sandbox's MongoDB as its admin. */
export function adminMongoUrl(entry: SeedPlanEntry, creds: Record<string, string>): string {
  const user = encodeURIComponent(creds[KEYS.adminUsername]!);
  const pwd = encodeURIComponent(creds[KEYS.adminPassword]!);
  return `mongodb://${user}:${pwd}@${entry.host}:${entry.port}/?authSource=admin`;
}
