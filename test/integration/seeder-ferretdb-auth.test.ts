import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snippets } from '../../api/src/routes/candidate.ts';
import { FerretServer } from '../../hack/cluster/ferretdb.ts';
import { resolveDataset } from '../../sandboxes/src/datasets/catalog.ts';
import { MONGO_EXERCISES } from '../../sandboxes/src/exercises/mongo.ts';
import { gradeMongo } from '../../sandboxes/src/grader/index.ts';
import { runSeed, type SeedPlan } from '../../sandboxes/src/seeder/run.ts';

/**
 * The seed Job against the e2e tier's MongoDB image as it runs: FerretDB 1.24 started through the
 * image's entrypoint with SCRAM authentication and a setup user (MONGO_INITDB_ROOT_*). FerretDB
 * 1.24 has no authorization and refuses `createUser` with roles (code 238): the seeder must still
 * load the data and leave candidate and grader users that authenticate.
 */
const token = () => randomBytes(24).toString('base64url');
// The operator's mongo Secret (operator/src/assessment/desired.ts credentialsSecret).
const creds = {
  database: 'sandbox',
  username: 'candidate',
  password: token(),
  'admin-username': 'root',
  'admin-password': token(),
  'grader-username': 'grader',
  'grader-password': token(),
};
const ferret = new FerretServer({
  auth: { username: creds['admin-username'], password: creds['admin-password'] },
});
const dataset = resolveDataset('retail@1');
let credDir: string;
let plan: SeedPlan;
let admin: MongoClient;
const log: string[] = [];
let firstRun: Error | undefined;
let refused: Error | undefined;
let usersAfterRefusal = -1;
/** The local cluster's opt-in (chart value sandboxes.mongo.allowRolelessUsers). */
const optIn = { size: 'small' as const, waitTimeoutMs: 30_000, allowRolelessUsers: true };

const at = (user: string, pwd: string) =>
  `mongodb://${encodeURIComponent(user)}:${encodeURIComponent(pwd)}@127.0.0.1:${ferret.port}/${creds.database}?authSource=${creds.database}&serverSelectionTimeoutMS=3000`;
/** The API's grading service connects this way (api/src/services/grading.ts). */
const graderUrl = () => at(creds['grader-username'], creds['grader-password']);
/** What the candidate page hands the candidate (api/src/routes/candidate.ts). */
const candidateUrl = () =>
  snippets('mongo', { host: '127.0.0.1', port: ferret.port, tls: 'none' }, creds).url!;

async function withClient<T>(url: string, f: (c: MongoClient) => Promise<T>): Promise<T> {
  const c = new MongoClient(url, { serverSelectionTimeoutMS: 3000 });
  try {
    await c.connect();
    return await f(c);
  } finally {
    await c.close();
  }
}

const counts = async () => ({
  card_events: await admin.db(creds.database).collection('card_events').countDocuments(),
  app_sessions: await admin.db(creds.database).collection('app_sessions').countDocuments(),
});

beforeAll(async () => {
  await ferret.start();
  credDir = mkdtempSync(join(tmpdir(), 'epreuve-seed-creds-'));
  for (const [k, v] of Object.entries(creds)) writeFileSync(join(credDir, k), v);
  plan = [
    {
      name: 'events',
      kind: 'mongo',
      host: '127.0.0.1',
      port: ferret.port,
      dataset: 'retail@1',
      credentials: credDir,
    },
  ];
  admin = await new MongoClient(ferret.adminUrl).connect();
  // The seed Job's own code path: credentials read from the Secret's files, admin via authSource=admin.
  // Without the opt-in first: the seed must stop, naming the setting, and create no user.
  refused = await runSeed(plan, { size: 'small', waitTimeoutMs: 30_000, log: () => {} }).then(
    () => undefined,
    (err: Error) => err,
  );
  usersAfterRefusal = (await admin.db(creds.database).command({ usersInfo: 1 })).users.length;
  firstRun = await runSeed(plan, { ...optIn, log: (l) => log.push(l) }).then(
    () => undefined,
    (err: Error) => err,
  );
}, 180_000);
afterAll(async () => {
  await admin?.close();
  await ferret.stop();
  if (credDir) rmSync(credDir, { recursive: true, force: true });
});

describe('seeder on FerretDB with authentication (the e2e image)', () => {
  it('authentication is really on: no credentials and a wrong password are refused', async () => {
    await expect(
      withClient(ferret.url, (c) => c.db(creds.database).collection('x').findOne()),
    ).rejects.toThrow(/auth|Unauthorized|not authorized/i);
    await expect(
      withClient(at(creds.username, 'wrong'), (c) => c.db(creds.database).command({ ping: 1 })),
    ).rejects.toThrow(/Authentication failed/i);
  });

  it('without the opt-in, the seed fails naming the chart value, and no user exists without roles', () => {
    expect(refused?.message).toMatch(
      /seeding events .* failed: FerretDB v1\.24\.0 does not implement roles \(code 238\).*sandboxes\.mongo\.allowRolelessUsers=true/,
    );
    expect(usersAfterRefusal).toBe(0);
  });

  it('with the opt-in, the seed succeeds: data loaded, each migration recorded once', async () => {
    expect(firstRun).toBeUndefined();
    const data = dataset.generate('small');
    expect(await counts()).toEqual({
      card_events: data.card_events.length,
      app_sessions: data.app_sessions.length,
    });
    const migrations = await admin
      .db(creds.database)
      .collection('migrations')
      .find()
      .sort({ _id: 1 })
      .toArray();
    expect(migrations.map((m) => m._id)).toEqual([1, 2, 3, 4]);
  });

  it('warns once per user that roles are not enforced by this server', () => {
    const warnings = log.filter((l) => /roles are not enforced/.test(l));
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/"candidate".*FerretDB v1\.24\.0/);
    expect(warnings[1]).toMatch(/"grader".*FerretDB v1\.24\.0/);
    expect(warnings.every((w) => w.startsWith('WARNING'))).toBe(true);
    expect(log.join('\n')).not.toContain(creds.password);
  });

  it('the candidate connects with the URL their page shows and reads the data', async () => {
    const n = await withClient(candidateUrl(), (c) =>
      c.db(creds.database).collection('app_sessions').countDocuments(),
    );
    expect(n).toBe(dataset.generate('small').app_sessions.length);
  });

  it('the grader connects as the API does and grades an answer', async () => {
    const exercise = MONGO_EXERCISES.find((e) => e.id === 'sessions-per-device')!;
    await withClient(graderUrl(), async (c) => {
      const right = await gradeMongo(c, creds.database, exercise, exercise.reference);
      expect(right.pass).toBe(true);
      const wrong = await gradeMongo(c, creds.database, exercise, exercise.wrongAnswers[0]!.answer);
      expect(wrong.pass).toBe(false);
    });
  });

  it('as the warning says, nothing is enforced: even the grader may write', async () => {
    await withClient(graderUrl(), async (c) => {
      const scratch = c.db(creds.database).collection('grader_write_probe');
      await scratch.insertOne({ _id: 'probe' } as never);
      expect(await scratch.countDocuments()).toBe(1);
      await scratch.drop();
    });
  });

  it('a second run applies nothing, changes no data, and the passwords still work', async () => {
    const before = await admin.db(creds.database).collection('migrations').find().sort({ _id: 1 }).toArray();
    const countsBefore = await counts();
    const again: string[] = [];
    await runSeed(plan, { ...optIn, log: (l) => again.push(l) });
    expect(again).toContain('mongo: all 4 migrations already applied; nothing to do');
    expect(again.some((l) => /applying migration/.test(l))).toBe(false);
    expect(await admin.db(creds.database).collection('migrations').find().sort({ _id: 1 }).toArray()).toEqual(
      before,
    );
    expect(await counts()).toEqual(countsBefore);
    for (const url of [candidateUrl(), graderUrl()])
      expect(await withClient(url, (c) => c.db(creds.database).command({ ping: 1 }))).toMatchObject({
        ok: 1,
      });
  });

  it('a rotated password in the Secret takes effect on the next run; the old one is refused', async () => {
    const old = creds.password;
    creds.password = token();
    writeFileSync(join(credDir, 'password'), creds.password);
    await runSeed(plan, { ...optIn, log: () => {} });
    expect(await withClient(candidateUrl(), (c) => c.db(creds.database).command({ ping: 1 }))).toMatchObject({
      ok: 1,
    });
    await expect(
      withClient(at(creds.username, old), (c) => c.db(creds.database).command({ ping: 1 })),
    ).rejects.toThrow(/Authentication failed/i);
  });
});
