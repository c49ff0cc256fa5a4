import { lstatSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUpstreamFerretdb, FerretServer } from '../../hack/cluster/ferretdb.ts';
import { preload } from '../../hack/images/ferretdb/preload.ts';
import { resolveDataset } from '../../sandboxes/src/datasets/catalog.ts';
import { seedMongo } from '../../sandboxes/src/seeder/mongo.ts';

/**
 * A MongoDB sandbox whose dataset the image preloaded (hack/images/ferretdb/preload.ts, as build.sh
 * runs it, small size to keep it short): the real FerretDB started through the image's entrypoint
 * with the operator's EPREUVE_PRELOAD_* copies it in, and the seeder finds it loaded.
 */
const auth = { username: 'root', password: `preload-root-${process.pid}-0123456789` };
const candidate = { username: 'candidate', password: `cand-${process.pid}-0123456789` };
const grader = { username: 'grader', password: `grader-${process.pid}-0123456789` };
const dataset = resolveDataset('retail@1');
let dir: string;
let files: string[];
let server: FerretServer;
let admin: MongoClient;
const log: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'epreuve-preload-test-'));
  files = await preload(process.env.TEST_ASSET_FERRETDB_UPSTREAM ?? buildUpstreamFerretdb(), dir, 'small');
  server = await new FerretServer({
    auth,
    // What the operator sets for a sandbox on `retail` (latest), plus where this test's files are.
    env: {
      EPREUVE_PRELOAD_DATASET: 'retail-small',
      EPREUVE_PRELOAD_DATABASE: 'sandbox',
      EPREUVE_PRELOAD_DIR: dir,
    },
  }).start();
  admin = await new MongoClient(server.adminUrl).connect();
}, 300_000);
afterAll(async () => {
  await admin?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('preloaded MongoDB datasets', () => {
  it('writes one file per dataset version and links the bare name to the latest', () => {
    expect(files).toEqual(['retail@1-small.sqlite', 'retail-small.sqlite']);
    expect(lstatSync(join(dir, 'retail-small.sqlite')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(dir, 'retail-small.sqlite'))).toBe('retail@1-small.sqlite');
  });

  it('has the seeder apply no migration, create the users, and serve the same documents a load would', async () => {
    const res = await seedMongo(admin, {
      database: 'sandbox',
      dataset,
      size: 'small',
      candidate,
      grader,
      allowRolelessUsers: true, // FerretDB 1.x has no roles
      log: (l) => log.push(l),
    });
    expect(res.applied).toEqual([]);
    expect(log).toContain('mongo: all 4 migrations already applied; nothing to do');

    const data = dataset.generate('small');
    const byId = (a: { _id: string }, b: { _id: string }) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0);
    const db = admin.db('sandbox');
    expect(await db.collection('card_events').find().sort({ _id: 1 }).toArray()).toEqual(
      [...data.card_events].sort(byId),
    );
    expect(await db.collection('app_sessions').countDocuments()).toBe(data.app_sessions.length);
    const indexes = (await db.collection('card_events').indexes()).map((i) => i.name);
    expect(indexes).toContain('customer_at');

    // The candidate's credentials, created by the seed on the preloaded server, work there.
    const url = `mongodb://${candidate.username}:${candidate.password}@127.0.0.1:${server.port}/sandbox?authSource=sandbox`;
    const asCandidate = await new MongoClient(url).connect();
    try {
      expect(await asCandidate.db('sandbox').collection('card_events').countDocuments()).toBe(
        data.card_events.length,
      );
    } finally {
      await asCandidate.close();
    }
  });
});
