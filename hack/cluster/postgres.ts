import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { freePort, Supervisor } from './supervisor.ts';

/**
 * A throwaway PostgreSQL server (Debian's package) on a random loopback port, data on tmpfs,
 * with durability off for speed. Runs as the `postgres` user when started as root (initdb
 * refuses root). PG_BIN points at another installation's bin directory.
 */
export class PostgresServer {
  private readonly processes = new Supervisor('epreuve-pg');
  port = 0;
  readonly password = randomBytes(12).toString('hex');

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
    const bin = postgresBin();
    const owner = process.getuid?.() === 0 ? systemUser('postgres') : undefined;
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
      await c.end();
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
