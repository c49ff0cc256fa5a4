import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type DbCredentials,
  dbCredentials,
  DB_CREDENTIAL_KEYS as KEYS,
  SEED_PLAN_ENV,
  type SeedPlan,
  type SeedPlanEntry,
  seedPlanSchema,
} from '@epreuve/crds';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { resolveDataset } from '../datasets/catalog.ts';
import { seedHiddenMongoVariants, seedMongo } from './mongo.ts';
import { seedCollectionSource, seedHiddenVariants, seedPostgres } from './postgres.ts';

export type { SeedPlan };

export interface SeedRunOptions {
  size: 'small' | 'standard';
  /** Give up waiting for a database after this long. */
  waitTimeoutMs: number;
  log: (line: string) => void;
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
  // Fails early, naming the known datasets.
  for (const entry of res.data) {
    resolveDataset(entry.dataset);
    if (entry.collectionSource) resolveDataset(entry.collectionSource.dataset);
  }
  return res.data;
}

/** The sandbox Secret's keys, mounted as one file each in `dir`. */
function readCredentials(dir: string): DbCredentials {
  const read = (key: string) => {
    try {
      return readFileSync(join(dir, key), 'utf8').trim();
    } catch {
      throw new Error(`credential "${key}" missing from ${dir}`);
    }
  };
  return dbCredentials.parse(Object.fromEntries(Object.values(KEYS).map((k) => [k, read(k)])));
}

/** Retries `attempt` with exponential backoff (1 s → 10 s) until it succeeds or time runs out. */
export async function waitFor<T>(
  what: string,
  attempt: () => Promise<T>,
  timeoutMs: number,
  log: (l: string) => void,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      const delay = Math.min(10_000, 1000 * 2 ** (n - 1));
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
  const results = await Promise.allSettled(plan.map((entry) => seedOne(entry, o)));
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
  if (failures.length > 0) throw new Error(failures.join('; '));
}

async function seedOne(entry: SeedPlanEntry, o: SeedRunOptions): Promise<void> {
  const dataset = resolveDataset(entry.dataset);
  const creds = readCredentials(entry.credentials);
  const candidate = { username: creds[KEYS.username], password: creds[KEYS.password] };
  const grader = { username: creds[KEYS.graderUsername], password: creds[KEYS.graderPassword] };
  const where = `${entry.name} (${entry.kind} at ${entry.host}:${entry.port})`;
  const started = Date.now();
  try {
    if (entry.kind === 'postgres') {
      const admin: pg.ClientConfig = {
        host: entry.host,
        port: entry.port,
        user: creds[KEYS.adminUsername],
        password: creds[KEYS.adminPassword],
        database: creds[KEYS.database],
        connectionTimeoutMillis: 5000,
      };
      await waitFor(
        where,
        async () => {
          const c = new pg.Client(admin);
          c.on('error', () => {}); // a database still starting: the attempt fails and is retried
          await c.connect();
          await c.end();
        },
        o.waitTimeoutMs,
        o.log,
      );
      await seedPostgres(admin, { dataset, size: o.size, candidate, grader, log: o.log });
      if (entry.hiddenVariants)
        await seedHiddenVariants(admin, {
          dataset,
          count: entry.hiddenVariants,
          candidate,
          grader,
          log: o.log,
        });
      // What the data API serves, for the checks of a collection task (grader-only).
      if (entry.collectionSource)
        await seedCollectionSource(admin, {
          dataset: resolveDataset(entry.collectionSource.dataset),
          size: entry.collectionSource.size,
          candidate,
          grader,
          log: o.log,
        });
    } else {
      const user = encodeURIComponent(creds[KEYS.adminUsername]);
      const pwd = encodeURIComponent(creds[KEYS.adminPassword]);
      const url = `mongodb://${user}:${pwd}@${entry.host}:${entry.port}/?authSource=admin`;
      // A new client per attempt: a client whose first connection timed out stays closed
      // ("Topology is closed") however often it is retried.
      const client = await waitFor(
        where,
        async () => {
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
        o.waitTimeoutMs,
        o.log,
      );
      try {
        const target = { database: creds[KEYS.database], dataset, candidate, grader, log: o.log };
        await seedMongo(client, { ...target, size: o.size });
        if (entry.hiddenVariants)
          await seedHiddenMongoVariants(client, { ...target, count: entry.hiddenVariants });
      } finally {
        await client.close();
      }
    }
  } catch (err) {
    throw new Error(`seeding ${where} failed: ${(err as Error).message}`);
  }
  o.log(`${entry.name}: seeded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}
