import { rmSync } from 'node:fs';
import { DB_CREDENTIAL_KEYS as KEYS } from '@epreuve/crds';
import { MongoClient } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { FerretServer } from '../../hack/cluster/ferretdb.ts';
import { freePort } from '../../hack/cluster/supervisor.ts';
import { runSeed } from '../../sandboxes/src/seeder/run.ts';
import { credentialsDir } from '../harness/grader.ts';

/**
 * The seed Job often starts before its databases answer. A MongoDB client whose first connection
 * timed out stays closed ("Topology is closed") however often it is retried: each attempt must be
 * a new client. Here the seeder starts first, and MongoDB only after its first attempt timed out.
 */
const creds = {
  [KEYS.database]: 'sandbox',
  [KEYS.username]: 'candidate',
  [KEYS.password]: 'candidate-pw',
  [KEYS.adminUsername]: 'root',
  [KEYS.adminPassword]: 'root-pw-0123456789',
  [KEYS.graderUsername]: 'grader',
  [KEYS.graderPassword]: 'grader-pw',
};
const ferret = new FerretServer({ auth: { username: 'root', password: creds[KEYS.adminPassword] } });
const dir = credentialsDir(creds);

afterAll(async () => {
  await ferret.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the seeder started before its database', () => {
  it('retries with a new client each time and seeds once MongoDB answers', async () => {
    ferret.port = await freePort();
    const log: string[] = [];
    const seeding = runSeed(
      [
        {
          name: 'events',
          kind: 'mongo',
          host: '127.0.0.1',
          port: ferret.port,
          dataset: 'retail@1',
          credentials: dir,
        },
      ],
      // FerretDB has no roles: the local cluster's opt-in.
      { size: 'small', waitTimeoutMs: 90_000, log: (l) => log.push(l), allowRolelessUsers: true },
    );
    // Past the first attempt's 5 s server selection timeout: that client is dead for good.
    await new Promise((r) => setTimeout(r, 7000));
    expect(log.some((l) => /waiting for events/.test(l))).toBe(true);
    await ferret.start();
    await seeding;
    const admin = await new MongoClient(ferret.adminUrl).connect();
    try {
      expect(await admin.db('sandbox').collection('app_sessions').countDocuments()).toBeGreaterThan(0);
    } finally {
      await admin.close();
    }
  }, 120_000);
});
