import { randomBytes } from 'node:crypto';
import { DB_CREDENTIAL_KEYS as KEYS } from '@epreuve/crds';
import { type KubeClient, type KubeObject, resourceFor } from '@epreuve/kube';
import { MongoClient } from 'mongodb';
import pg from 'pg';

const SECRET = resourceFor('v1', 'Secret');

export interface PgServer {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** Where a test's operator process reaches "every" pool namespace's databases: these servers. */
export function poolAddressEnv(postgres: PgServer, mongoUrl?: string): Record<string, string> {
  const mongo = mongoUrl ? new URL(mongoUrl) : undefined;
  return {
    EPREUVE_POOL_POSTGRES_ADDRESS: `${postgres.host}:${postgres.port}`,
    ...(mongo && { EPREUVE_POOL_MONGO_ADDRESS: `${mongo.hostname}:${mongo.port}` }),
  };
}

export interface SeededMember {
  namespace: string;
  postgres: { username: string; password: string; database: string };
  mongo?: { username: string; password: string; database: string };
}

const secretData = async (client: KubeClient, ns: string, name: string) => {
  const s = await client.get<KubeObject & { data: Record<string, string> }>(SECRET, ns, name);
  if (!s) throw new Error(`no Secret ${ns}/${name}`);
  return Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
};

/**
 * Stands in for a pool member's seed Job against the real servers the integration tier runs
 * (there is no kubelet here): the candidate role/user of the member's Secret exists with the
 * Secret's password. One server hosts every member, so the member's Secret is first patched to
 * name a role of its own (roles are server-wide) and the server's admin — what the operator reads
 * back when it rotates in place.
 */
export class PoolDatabases {
  private readonly roles: string[] = [];
  private readonly mongoUsers: Array<{ db: string; user: string }> = [];

  private readonly client: KubeClient;
  private readonly postgres: PgServer;
  private readonly mongo?: { adminUrl: string; username: string; password: string };

  constructor(
    client: KubeClient,
    postgres: PgServer,
    mongo?: { adminUrl: string; username: string; password: string },
  ) {
    this.client = client;
    this.postgres = postgres;
    this.mongo = mongo;
  }

  async seed(
    namespace: string,
    sandboxes = { postgres: 'warehouse', mongo: 'events' },
  ): Promise<SeededMember> {
    const tag = randomBytes(4).toString('hex');
    const pgUser = `cand_${tag}`;
    await this.client.mergePatch(SECRET, namespace, `${sandboxes.postgres}-credentials`, {
      stringData: {
        [KEYS.username]: pgUser,
        [KEYS.adminUsername]: this.postgres.user,
        [KEYS.adminPassword]: this.postgres.password,
        [KEYS.database]: 'postgres',
      },
    });
    const pgCreds = await secretData(this.client, namespace, `${sandboxes.postgres}-credentials`);
    const admin = new pg.Client({ ...this.postgres, database: 'postgres' });
    await admin.connect();
    try {
      await admin.query(
        `CREATE ROLE ${pg.escapeIdentifier(pgUser)} LOGIN PASSWORD ${pg.escapeLiteral(pgCreds[KEYS.password]!)}`,
      );
    } finally {
      await admin.end();
    }
    this.roles.push(pgUser);
    const seeded: SeededMember = {
      namespace,
      postgres: { username: pgUser, password: pgCreds[KEYS.password]!, database: 'postgres' },
    };
    if (this.mongo) {
      const user = `cand_${tag}`;
      await this.client.mergePatch(SECRET, namespace, `${sandboxes.mongo}-credentials`, {
        stringData: {
          [KEYS.username]: user,
          [KEYS.adminUsername]: this.mongo.username,
          [KEYS.adminPassword]: this.mongo.password,
          [KEYS.database]: 'sandbox',
        },
      });
      const creds = await secretData(this.client, namespace, `${sandboxes.mongo}-credentials`);
      const c = new MongoClient(this.mongo.adminUrl);
      try {
        // FerretDB has no roles: a user without any (the local cluster's opt-in, as the seeder does).
        await c.db('sandbox').command({ createUser: user, pwd: creds[KEYS.password], roles: [] });
      } finally {
        await c.close();
      }
      this.mongoUsers.push({ db: 'sandbox', user });
      seeded.mongo = { username: user, password: creds[KEYS.password]!, database: 'sandbox' };
    }
    return seeded;
  }

  /** The member's candidate credentials as its Secrets say now. */
  async current(
    namespace: string,
    sandboxes = { postgres: 'warehouse', mongo: 'events' },
  ): Promise<{ postgres: string; mongo?: string }> {
    const p = await secretData(this.client, namespace, `${sandboxes.postgres}-credentials`);
    const m = this.mongo
      ? await secretData(this.client, namespace, `${sandboxes.mongo}-credentials`)
      : undefined;
    return { postgres: p[KEYS.password]!, ...(m && { mongo: m[KEYS.password] }) };
  }

  /** Connects as the candidate with `password`; resolves to the role PostgreSQL says it is. */
  async pgLogin(member: SeededMember, password: string): Promise<string> {
    const c = new pg.Client({
      host: this.postgres.host,
      port: this.postgres.port,
      user: member.postgres.username,
      password,
      database: member.postgres.database,
      connectionTimeoutMillis: 5000,
    });
    c.on('error', () => {});
    await c.connect();
    try {
      return (await c.query('SELECT current_user AS u')).rows[0].u as string;
    } finally {
      await c.end().catch(() => {});
    }
  }

  /** Pings the member's MongoDB as the candidate with `password`. */
  async mongoLogin(member: SeededMember, password: string): Promise<unknown> {
    if (!this.mongo || !member.mongo) throw new Error('no MongoDB in this test');
    const u = new URL(this.mongo.adminUrl);
    u.username = encodeURIComponent(member.mongo.username);
    u.password = encodeURIComponent(password);
    u.pathname = `/${member.mongo.database}`;
    u.search = '';
    const c = new MongoClient(u.toString(), { serverSelectionTimeoutMS: 3000 });
    c.on('error', () => {});
    try {
      return await c.db(member.mongo.database).command({ ping: 1 });
    } finally {
      await c.close().catch(() => {});
    }
  }

  async cleanup(): Promise<void> {
    const admin = new pg.Client({ ...this.postgres, database: 'postgres' });
    await admin.connect();
    try {
      for (const r of this.roles) await admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(r)}`);
    } finally {
      await admin.end();
    }
    if (this.mongo) {
      const c = new MongoClient(this.mongo.adminUrl);
      try {
        for (const { db, user } of this.mongoUsers)
          await c
            .db(db)
            .command({ dropUser: user })
            .catch(() => {});
      } finally {
        await c.close();
      }
    }
  }
}
