import { DB_CREDENTIAL_KEYS as KEYS, type SeedPlan, type SeedPlanEntry } from '@epreuve/crds';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { ensureUsers } from './mongo.ts';
import type { Credentials } from './postgres.ts';
import { adminMongoUrl, adminPostgres, readCredentials, waitFor } from './run.ts';

/**
 * Credential rotation of a claimed warm pool namespace (issue 16): the operator has just written a
 * new candidate password in each database sandbox's Secret; this sets it in the database and ends
 * the candidate's sessions opened before, so nothing made before the claim works after it.
 */

/** Sets the candidate role's password and terminates that role's open sessions. */
export async function rotatePostgresCandidate(admin: pg.ClientConfig, candidate: Credentials): Promise<void> {
  const client = new pg.Client(admin);
  await client.connect();
  try {
    await client.query(
      `ALTER ROLE ${pg.escapeIdentifier(candidate.username)} PASSWORD ${pg.escapeLiteral(candidate.password)}`,
    );
    await client.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()',
      [candidate.username],
    );
  } finally {
    await client.end();
  }
}

export interface RotateOptions {
  waitTimeoutMs: number;
  log: (line: string) => void;
  /** As for the seed (SeedRunOptions): MongoDB users without roles on a server that has none. */
  allowRolelessUsers?: boolean;
}

/** Rotates every database sandbox of the plan; failures, each naming its sandbox, are thrown together. */
export async function runRotate(plan: SeedPlan, o: RotateOptions): Promise<void> {
  const results = await Promise.allSettled(plan.map((entry) => rotateOne(entry, o)));
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
  if (failures.length > 0) throw new Error(failures.join('; '));
}

async function rotateOne(entry: SeedPlanEntry, o: RotateOptions): Promise<void> {
  const creds = readCredentials(entry.credentials);
  const candidate = { username: creds[KEYS.username], password: creds[KEYS.password] };
  const where = `${entry.name} (${entry.kind} at ${entry.host}:${entry.port})`;
  try {
    if (entry.kind === 'postgres') {
      const admin = adminPostgres(entry, creds);
      await waitFor(where, () => rotatePostgresCandidate(admin, candidate), o.waitTimeoutMs, o.log);
    } else {
      const url = adminMongoUrl(entry, creds);
      await waitFor(
        where,
        async () => {
          // A new client per attempt: a client whose first connection failed stays closed.
          const client = new MongoClient(url, { serverSelectionTimeoutMS: 5000 });
          client.on('error', () => {});
          try {
            const grader = { username: creds[KEYS.graderUsername], password: creds[KEYS.graderPassword] };
            await ensureUsers(
              client.db(creds[KEYS.database]),
              { database: creds[KEYS.database], candidate, grader, allowRolelessUsers: o.allowRolelessUsers },
              o.log,
            );
          } finally {
            await client.close().catch(() => {});
          }
        },
        o.waitTimeoutMs,
        o.log,
      );
    }
  } catch (err) {
    throw new Error(`rotating ${where} failed: ${(err as Error).message}`);
  }
  o.log(`${entry.name}: candidate credentials rotated`);
}
