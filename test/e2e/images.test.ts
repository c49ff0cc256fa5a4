import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DEFAULT_POSTGRES_VERSION, POSTGRES_VERSIONS } from '@epreuve/crds';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, sleep } from '../../hack/cluster/supervisor.ts';
import { wildcardCertificate } from '../harness/tls.ts';

/**
 * Every image hack/images/build.sh makes, run once with podman the way the cluster runs it
 * (uid, read-only root, dropped capabilities, the operator's environment), on the host network
 * at free ports. Proves they start and honour their contract before the e2e cluster imports them.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const BUILD = join(ROOT, 'hack', 'images', 'build.sh');
const env = { ...process.env, CONTAINERS_CONF: join(ROOT, 'hack', 'images', 'containers.conf') };
const run = promisify(execFile);
const podman = (...args: string[]) => run('podman', args, { env, encoding: 'utf8', timeout: 120_000 });
const started: string[] = [];
const dirs: string[] = [];
const RESTRICTED = ['--read-only', '--cap-drop=ALL', '--security-opt=no-new-privileges', '--network=host'];
const SIZES: string[] = [];

/** Starts a detached container named for this run; removed in afterAll. */
async function start(name: string, args: string[]): Promise<string> {
  const full = `epreuve-images-test-${name}-${process.pid}`;
  await podman('run', '-d', '--name', full, ...args);
  started.push(full);
  return full;
}
const logs = async (name: string) => {
  const r = await podman('logs', name);
  return r.stdout + r.stderr;
};
async function until<T>(what: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(err as Error).message}`);
      await sleep(300);
    }
  }
}
/** A directory a container user owns, as an emptyDir or PVC with fsGroup would be. */
function ownedDir(uid: number): string {
  const d = mkdtempSync(join(tmpdir(), 'epreuve-images-'));
  chownSync(d, uid, uid);
  dirs.push(d);
  return d;
}
/** An address of this host other than loopback: the official postgres image trusts 127.0.0.1. */
const hostAddress = () =>
  Object.values(networkInterfaces())
    .flat()
    .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

let archives: string[] = [];

beforeAll(async () => {
  const t0 = Date.now();
  const out = execFileSync(BUILD, {
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 1_500_000,
  });
  archives = out.trim().split('\n');
  console.log(`hack/images/build.sh: ${Date.now() - t0} ms`);
}, 1_600_000);

afterAll(async () => {
  for (const c of started) await podman('rm', '-f', '-t', '2', c).catch(() => {});
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (SIZES.length) console.log(`image sizes:\n${SIZES.join('\n')}`);
});

describe('hack/images/build.sh', () => {
  const expected = [
    'localhost/pause:3.10',
    'localhost/coredns:1.14.7',
    'localhost/agnhost:2.63',
    ...POSTGRES_VERSIONS.map((v) => `localhost/postgres:${v}`),
    'localhost/ferretdb:1.24',
    'localhost/epreuve/operator:0.1.0',
    'localhost/epreuve/api:0.1.0',
    'localhost/epreuve/gateway:0.1.0',
    'localhost/epreuve/data-api:0.1.0',
    'localhost/epreuve/seeder:0.1.0',
  ];

  it('prints one docker-archive per image, each naming its fully qualified reference', async () => {
    expect(archives).toHaveLength(expected.length);
    const tags = archives.map((a) => {
      expect(existsSync(a)).toBe(true);
      // docker-archive: manifest.json lists RepoTags, which `ctr images import` names the image by.
      const manifest = JSON.parse(execFileSync('tar', ['-xOf', a, 'manifest.json'], { encoding: 'utf8' }));
      return manifest[0].RepoTags[0] as string;
    });
    expect(tags).toEqual(expected);
    for (const ref of expected) {
      const { stdout } = await podman('image', 'inspect', '--format', '{{.Size}}', ref);
      SIZES.push(`  ${ref}: ${(Number(stdout) / 1e6).toFixed(0)} MB`);
    }
  });

  it('is cached: a second run with unchanged inputs builds nothing', () => {
    const r = spawnSync(BUILD, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(archives);
    // Every image answered from the cache: nothing built, nothing saved again.
    expect(r.stderr).not.toMatch(/building|saving/);
    expect(r.stderr.match(/ cached \(/g)?.length).toBeGreaterThanOrEqual(expected.length);
  });

  it('refuses an unknown image name', () => {
    let err: { status?: number; stderr?: string } = {};
    try {
      execFileSync(BUILD, ['nope'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.status).toBe(2);
    expect(err.stderr).toMatch(/unknown image nope/);
  });
});

describe('localhost/pause:3.10', () => {
  it('runs as nobody, pauses, and exits 0 on SIGTERM', async () => {
    const c = await start('pause', [
      ...RESTRICTED.filter((a) => a !== '--network=host'),
      '--network=none',
      'localhost/pause:3.10',
    ]);
    const { stdout: user } = await podman('inspect', '--format', '{{.Config.User}}', c);
    expect(user.trim()).toBe('65535:65535');
    await sleep(500);
    expect((await podman('inspect', '--format', '{{.State.Running}}', c)).stdout.trim()).toBe('true');
    await podman('stop', '-t', '5', c);
    expect((await podman('inspect', '--format', '{{.State.ExitCode}}', c)).stdout.trim()).toBe('0');
  });
});

describe.each(POSTGRES_VERSIONS.map((v) => [v]))('localhost/postgres:%s', (major) => {
  const image = `localhost/postgres:${major}`;
  it('initialises PGDATA with POSTGRES_USER/PASSWORD/DB as uid 999 on a read-only root, and accepts psql', async () => {
    const port = await freePort();
    const password = randomBytes(12).toString('hex');
    const pgArgs = [
      ...RESTRICTED,
      '--user=999:999',
      `--volume=${ownedDir(999)}:/var/lib/postgresql/data`,
      `--volume=${ownedDir(999)}:/var/run/postgresql`,
      `--volume=${ownedDir(999)}:/tmp`,
      '--env=PGDATA=/var/lib/postgresql/data/pgdata',
      '--env=POSTGRES_DB=sandbox',
      '--env=POSTGRES_USER=postgres',
      `--env=POSTGRES_PASSWORD=${password}`,
      image,
      'postgres',
      '-p',
      String(port),
    ];
    const c = await start(`postgres-${major}`, pgArgs);
    // The operator's readiness probe, verbatim but for the port.
    await until('pg_isready', () =>
      podman('exec', c, 'pg_isready', '-U', 'postgres', '-h', '127.0.0.1', '-p', String(port)),
    );
    const host = hostAddress();
    expect(host, 'a non-loopback address to connect from').toBeDefined();
    const out = execFileSync(
      'psql',
      [
        '-h',
        host!,
        '-p',
        String(port),
        '-U',
        'postgres',
        '-d',
        'sandbox',
        '-tAc',
        "select current_database(), current_setting('server_encoding'), version()",
      ],
      { env: { ...process.env, PGPASSWORD: password }, encoding: 'utf8' },
    );
    expect(out).toMatch(new RegExp(`^sandbox\\|UTF8\\|PostgreSQL ${major}\\.`));
    const bad = new pg.Client({ host, port, user: 'postgres', password: 'wrong', database: 'sandbox' });
    await expect(bad.connect()).rejects.toThrow(/password authentication failed/);
    expect(await logs(c)).toMatch(/PostgreSQL initialised in \/var\/lib\/postgresql\/data\/pgdata/);

    // A restarted pod on the same volume keeps its data and does not initialise again.
    await podman('stop', '-t', '10', c);
    expect((await podman('inspect', '--format', '{{.State.ExitCode}}', c)).stdout.trim()).toBe('0');
    const again = await start(`postgres-${major}-again`, pgArgs);
    await until('pg_isready after restart', () =>
      podman('exec', again, 'pg_isready', '-U', 'postgres', '-h', '127.0.0.1', '-p', String(port)),
    );
    expect(await logs(again)).not.toMatch(/initialised/);
    const ok = new pg.Client({ host, port, user: 'postgres', password, database: 'sandbox' });
    await ok.connect();
    await ok.end();
  });

  it('refuses to start without POSTGRES_PASSWORD, naming it', async () => {
    const err = await podman(
      'run',
      '--rm',
      ...RESTRICTED,
      '--user=999:999',
      `--volume=${ownedDir(999)}:/var/lib/postgresql/data`,
      image,
    ).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/POSTGRES_PASSWORD is required/);
  });
});

describe('localhost/ferretdb:1.24', () => {
  it('answers the MongoDB driver with MONGO_INITDB_ROOT_* as its SCRAM user, data in /data/db', async () => {
    const port = await freePort();
    const password = randomBytes(12).toString('hex');
    const data = ownedDir(999);
    const args = [
      ...RESTRICTED,
      '--user=999:999',
      `--volume=${data}:/data/db`,
      `--volume=${ownedDir(999)}:/tmp`,
      `--env=FERRETDB_LISTEN_ADDR=127.0.0.1:${port}`,
      '--env=FERRETDB_DEBUG_ADDR=127.0.0.1:0',
      '--env=MONGO_INITDB_ROOT_USERNAME=root',
      `--env=MONGO_INITDB_ROOT_PASSWORD=${password}`,
      'localhost/ferretdb:1.24',
    ];
    const first = await start('ferretdb', args);
    const url = (user: string, pwd: string) =>
      `mongodb://${user}:${pwd}@127.0.0.1:${port}/?authSource=admin&serverSelectionTimeoutMS=2000`;
    const root = new MongoClient(url('root', password));
    try {
      await until('ping', () => root.db('admin').command({ ping: 1 }));
      await root
        .db('sandbox')
        .collection('orders')
        .insertOne({ _id: 1 as never, total: 42 });
      expect(await root.db('sandbox').collection('orders').countDocuments()).toBe(1);
    } finally {
      await root.close();
    }
    expect(existsSync(join(data, 'sandbox.sqlite'))).toBe(true);
    const wrong = new MongoClient(url('root', 'wrong'));
    await expect(wrong.db('admin').command({ ping: 1 })).rejects.toThrow(/Authentication failed/);
    await wrong.close();
    const anonymous = new MongoClient(`mongodb://127.0.0.1:${port}/?serverSelectionTimeoutMS=2000`);
    await expect(anonymous.db('sandbox').collection('orders').findOne()).rejects.toThrow(
      /requires authentication/,
    );
    await anonymous.close();

    // A restarted pod on the same volume: SIGTERM exits 0, the setup user and the data survive.
    await podman('stop', '-t', '10', first);
    expect((await podman('inspect', '--format', '{{.State.ExitCode}}', first)).stdout.trim()).toBe('0');
    await start('ferretdb-again', args);
    const again = new MongoClient(url('root', password));
    try {
      const doc = await until('ping after restart', () => again.db('sandbox').collection('orders').findOne());
      expect(doc).toMatchObject({ total: 42 });
    } finally {
      await again.close();
    }
  });
});

describe('the project images', () => {
  it.each([
    // Each holds its own bundle (compiled JavaScript: no TypeScript, no other process's code), its
    // own production dependencies and the data files it reads at run time.
    ['operator', ['operator/main.mjs']],
    ['api', ['api/main.mjs']],
    ['gateway', ['gateway/main.mjs']],
    // prebuilt: the standard dataset's generated tables (sandboxes/src/datasets/prebuilt.ts).
    ['data-api', ['sandboxes/cli.mjs', 'sandboxes/data-api/main.mjs'], ['prebuilt']],
    ['seeder', ['sandboxes/cli.mjs', 'sandboxes/data-api/main.mjs'], ['prebuilt']],
  ])('%s: /app holds its bundles %j and no TypeScript', async (image, bundles, more: string[] = []) => {
    const ref = `localhost/epreuve/${image}:0.1.0`;
    const dir = bundles[0]!.split('/')[0]!;
    const { stdout } = await podman('run', '--rm', ...RESTRICTED, '--entrypoint', 'ls', ref, '-1', '/app');
    expect(stdout.trim().split('\n')).toEqual([dir, 'node_modules', ...more].sort());
    const find = async (...args: string[]) =>
      (await podman('run', '--rm', ...RESTRICTED, '--entrypoint', 'find', ref, ...args)).stdout
        .trim()
        .split('\n');
    // Beside the entries only the chunks they share (sandboxes: the dataset generator).
    const entries = await find(dir, '-name', '*.mjs', '-not', '-path', '*/chunks/*');
    expect(entries.sort()).toEqual(bundles);
    expect(
      await find('.', '-name', '*.ts', '-not', '-name', '*.d.ts', '-not', '-path', './node_modules/*'),
    ).toEqual(['']);
    // The workspaces are inlined: npm's links to them are gone (they would dangle).
    expect(await find('node_modules', '-maxdepth', '1', '-name', '@epreuve')).toEqual(['']);
    const { stdout: user } = await podman('image', 'inspect', '--format', '{{.Config.User}}', ref);
    expect(user.trim()).toBe('1000:1000');
  });

  it('api: answers /healthz as uid 1000 on a read-only root', async () => {
    const port = await freePort();
    const c = await start('api', [
      ...RESTRICTED,
      `--env=EPREUVE_API_PORT=${port}`,
      '--env=EPREUVE_API_HOST=127.0.0.1',
      'localhost/epreuve/api:0.1.0',
    ]);
    const res = await until('GET /healthz', async () => {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (!r.ok) throw new Error(`status ${r.status}`);
      return r;
    });
    expect(res.status).toBe(200);
    expect((await podman('exec', c, 'id', '-u')).stdout.trim()).toBe('1000');
    // Files the bundle reads beside its sources' old paths (bundle.ts rewrites import.meta.dirname):
    // the pages, read at start, and the interview guides, read at the first interview.
    const staff = await fetch(`http://127.0.0.1:${port}/staff`);
    expect([staff.status, staff.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
    expect(await staff.text()).toContain('<html');
    const { stdout: guides } = await podman('exec', c, 'ls', '-1', 'api/src/guides');
    expect(guides.trim().split('\n')).toEqual(
      readdirSync(join(ROOT, 'api/src/guides'))
        .filter((f) => f.endsWith('.yaml'))
        .sort(),
    );
  });

  it('operator: exits 2 naming a bad setting, before touching Kubernetes', async () => {
    const err = await podman(
      'run',
      '--rm',
      ...RESTRICTED,
      '--env=EPREUVE_IMAGE_PULL_POLICY=Sometimes',
      'localhost/epreuve/operator:0.1.0',
    ).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/EPREUVE_IMAGE_PULL_POLICY/);
  });

  it('operator: without a reachable Kubernetes it serves /healthz and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const c = await start('operator', [
      ...RESTRICTED,
      `--env=EPREUVE_METRICS_PORT=${port}`,
      '--env=EPREUVE_LEADER_ELECT=false',
      // No kubeconfig and no service account: client-node falls back to an unreachable server.
      'localhost/epreuve/operator:0.1.0',
    ]);
    await until('GET /healthz', async () => {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (!r.ok) throw new Error(`status ${r.status}`);
    });
    await podman('stop', '-t', '10', c);
    expect((await podman('inspect', '--format', '{{.State.ExitCode}}', c)).stdout.trim()).toBe('0');
  });

  it('gateway: exits 2 naming every missing setting, before touching Kubernetes', async () => {
    const err = await podman('run', '--rm', ...RESTRICTED, 'localhost/epreuve/gateway:0.1.0').catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(
      /EPREUVE_GATEWAY_DOMAIN[\s\S]*EPREUVE_GATEWAY_TLS_CERT_FILE[\s\S]*EPREUVE_GATEWAY_TLS_KEY_FILE/,
    );
  });

  it('gateway: without a reachable Kubernetes it is alive, not ready, and stops cleanly on SIGTERM', async () => {
    const tls = ownedDir(1000);
    wildcardCertificate('sandbox.test', tls);
    chownSync(join(tls, 'tls.key'), 1000, 1000);
    const [port, metricsPort] = [await freePort(), await freePort()];
    const c = await start('gateway', [
      ...RESTRICTED,
      `--volume=${tls}:/etc/epreuve/tls:ro`,
      '--env=EPREUVE_GATEWAY_DOMAIN=sandbox.test',
      '--env=EPREUVE_GATEWAY_HOST=127.0.0.1',
      `--env=EPREUVE_GATEWAY_PORT=${port}`,
      `--env=EPREUVE_METRICS_PORT=${metricsPort}`,
      '--env=EPREUVE_GATEWAY_TLS_CERT_FILE=/etc/epreuve/tls/tls.crt',
      '--env=EPREUVE_GATEWAY_TLS_KEY_FILE=/etc/epreuve/tls/tls.key',
      // No kubeconfig and no service account: client-node falls back to an unreachable server.
      'localhost/epreuve/gateway:0.1.0',
    ]);
    await until('GET /healthz', async () => {
      const r = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
      if (!r.ok) throw new Error(`status ${r.status}`);
    });
    // Never ready without its routes: it does not take candidates it cannot route.
    const ready = await fetch(`http://127.0.0.1:${metricsPort}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toMatch(/waiting for the assessment cache/);
    expect((await podman('exec', c, 'id', '-u')).stdout.trim()).toBe('1000');
    await podman('stop', '-t', '10', c);
    expect((await podman('inspect', '--format', '{{.State.ExitCode}}', c)).stdout.trim()).toBe('0');
  });

  it('data-api: answers /healthz with the environment the operator gives it', async () => {
    const port = await freePort();
    await start('data-api', [
      ...RESTRICTED,
      `--volume=${ownedDir(1000)}:/tmp`,
      '--env=DATASET=retail@1',
      '--env=PAGE_SIZE=50',
      `--env=PORT=${port}`,
      `--env=API_KEY=${randomBytes(12).toString('hex')}`,
      'localhost/epreuve/data-api:0.1.0',
    ]);
    const res = await until('GET /healthz', async () => {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (!r.ok) throw new Error(`status ${r.status}`);
      return r;
    });
    expect(res.status).toBe(200);
  });

  it('seeder: lists the exercises, and exits 2 naming EPREUVE_SEED_PLAN when it is missing', async () => {
    const { stdout } = await podman(
      'run',
      '--rm',
      ...RESTRICTED,
      'localhost/epreuve/seeder:0.1.0',
      'exercises',
    );
    expect(stdout.trim().split('\n').length).toBeGreaterThan(1);
    const err = await podman('run', '--rm', ...RESTRICTED, 'localhost/epreuve/seeder:0.1.0').catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/EPREUVE_SEED_PLAN is not set/);
  });

  it('seeder: seeds the local PostgreSQL image of the default major the way the seed Job does', async () => {
    const port = await freePort();
    const admin = randomBytes(12).toString('hex');
    await start('postgres-seeded', [
      ...RESTRICTED,
      '--user=999:999',
      `--volume=${ownedDir(999)}:/var/lib/postgresql/data`,
      `--volume=${ownedDir(999)}:/var/run/postgresql`,
      '--env=PGDATA=/var/lib/postgresql/data/pgdata',
      '--env=POSTGRES_DB=sandbox',
      '--env=POSTGRES_USER=postgres',
      `--env=POSTGRES_PASSWORD=${admin}`,
      `localhost/postgres:${DEFAULT_POSTGRES_VERSION}`,
      'postgres',
      '-p',
      String(port),
    ]);
    const creds = ownedDir(1000);
    mkdirSync(join(creds, 'warehouse'));
    const files = {
      database: 'sandbox',
      'admin-username': 'postgres',
      'admin-password': admin,
      username: 'candidate',
      password: 'c-pass',
      'grader-username': 'grader',
      'grader-password': 'g-pass',
    };
    for (const [k, v] of Object.entries(files)) writeFileSync(join(creds, 'warehouse', k), v);
    chmodSync(join(creds, 'warehouse'), 0o755);
    const plan = [
      {
        name: 'warehouse',
        kind: 'postgres',
        host: hostAddress(),
        port,
        dataset: 'retail@1',
        credentials: '/etc/epreuve/credentials/warehouse',
      },
    ];
    const { stderr, stdout } = await podman(
      'run',
      '--rm',
      ...RESTRICTED,
      `--volume=${ownedDir(1000)}:/tmp`,
      `--volume=${join(creds, 'warehouse')}:/etc/epreuve/credentials/warehouse:ro`,
      `--env=EPREUVE_SEED_PLAN=${JSON.stringify(plan)}`,
      '--env=EPREUVE_DATASET_SIZE=small',
      'localhost/epreuve/seeder:0.1.0',
      'seed',
    );
    expect(stdout + stderr).toMatch(/warehouse/);
    const candidate = new pg.Client({
      host: hostAddress(),
      port,
      user: 'candidate',
      password: 'c-pass',
      database: 'sandbox',
    });
    await candidate.connect();
    try {
      const { rows } = await candidate.query(
        'select count(*)::int as n from information_schema.tables where table_schema not in ($1, $2)',
        ['pg_catalog', 'information_schema'],
      );
      expect(rows[0].n).toBeGreaterThan(0);
    } finally {
      await candidate.end();
    }
  });
});
