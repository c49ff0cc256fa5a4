import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { MongoClient } from 'mongodb';
import { cacheDir, HACK_DIR } from './assets.ts';
import { freePort, Supervisor } from './supervisor.ts';

/** The setup user of an authenticated FerretDB (the mongo image's MONGO_INITDB_ROOT_*). */
export interface FerretAuth {
  username: string;
  password: string;
}

/**
 * A real MongoDB wire-protocol server for tests: FerretDB v1 with its SQLite backend (pinned in
 * hack/tools/ferretdb, built from the Go module proxy), data on tmpfs. TEST_ASSET_FERRETDB points
 * at another binary. It has no user management: tests connect without credentials.
 *
 * With `auth`, it runs instead as the e2e tier's image does: upstream's cmd/ferretdb built from the
 * image's own wrapper module (hack/images/ferretdb) and started through the image's entrypoint, so
 * SCRAM authentication is on and `auth` is the setup user (TEST_ASSET_FERRETDB_UPSTREAM points at
 * another build of cmd/ferretdb).
 */
export class FerretServer {
  private readonly processes = new Supervisor('epreuve-ferret');
  port = 0;

  private readonly opts: { auth?: FerretAuth; env?: Record<string, string> };

  /** `env`: more of the image entrypoint's environment (with `auth` only), e.g. a preloaded dataset. */
  constructor(opts: { auth?: FerretAuth; env?: Record<string, string> } = {}) {
    this.opts = opts;
  }

  /** Without credentials: with `auth`, every command but a handshake is refused on it. */
  get url(): string {
    return `mongodb://127.0.0.1:${this.port}/`;
  }

  /** The setup user's URL (authSource=admin, as the seeder connects). Only with `auth`. */
  get adminUrl(): string {
    const a = this.opts.auth;
    if (!a) throw new Error('this FerretServer was started without authentication');
    return `mongodb://${encodeURIComponent(a.username)}:${encodeURIComponent(a.password)}@127.0.0.1:${this.port}/?authSource=admin`;
  }

  async start(timeoutMs = 60_000): Promise<this> {
    this.port ||= await freePort(); // a port chosen before start lets clients try it early
    const dir = this.processes.dir;
    const auth = this.opts.auth;
    if (auth) {
      const bin = process.env.TEST_ASSET_FERRETDB_UPSTREAM ?? buildUpstreamFerretdb();
      mkdirSync(join(dir, 'data'), { recursive: true });
      // The image's entrypoint maps MONGO_INITDB_ROOT_* to the setup user and new authentication.
      this.processes.spawn('ferretdb', 'sh', [join(HACK_DIR, 'images', 'ferretdb', 'docker-entrypoint.sh')], {
        env: {
          PATH: `${dirname(bin)}:${process.env.PATH ?? '/usr/bin:/bin'}`,
          FERRETDB_SQLITE_URL: `file:${dir}/data/`,
          FERRETDB_LISTEN_ADDR: `127.0.0.1:${this.port}`,
          FERRETDB_STATE_DIR: dir,
          FERRETDB_DEBUG_ADDR: '-', // the image's fixed 127.0.0.1:8088 would clash between runs
          MONGO_INITDB_ROOT_USERNAME: auth.username,
          MONGO_INITDB_ROOT_PASSWORD: auth.password,
          ...this.opts.env,
        },
      });
    } else {
      const bin =
        process.env.TEST_ASSET_FERRETDB ??
        execFileSync(join(HACK_DIR, 'build-go-tool.sh'), ['ferretdb'], {
          stdio: ['ignore', 'pipe', 'inherit'],
        })
          .toString()
          .trim();
      this.processes.spawn('ferretdb', bin, [
        `--sqlite-dir=${dir}/data`,
        `--listen-addr=127.0.0.1:${this.port}`,
        '--log-level=warn',
      ]);
    }
    const probeUrl = auth ? this.adminUrl : this.url;
    await this.processes.waitHealthy('ferretdb', timeoutMs, async () => {
      const client = new MongoClient(probeUrl, { serverSelectionTimeoutMS: 1000 });
      client.on('error', () => {}); // a probe against a server still starting: the ping fails instead
      try {
        await client.db('admin').command({ ping: 1 });
        return true;
      } finally {
        await client.close();
      }
    });
    return this;
  }

  stop(): Promise<void> {
    return this.processes.stop();
  }
}

/**
 * Builds upstream's cmd/ferretdb as hack/images/build.sh does (same wrapper module, so the same
 * code as the image), cached by the wrapper's content and the Go version. Upstream panics at start
 * without build/version/version.txt, which the module zip lacks and the read-only module cache
 * cannot take: build from a copy of the module that has it, through a replace.
 */
export function buildUpstreamFerretdb(): string {
  const wrapper = join(HACK_DIR, 'images', 'ferretdb');
  const files = ['go.mod', 'go.sum', 'tools.go'];
  const goVersion = execFileSync('go', ['env', 'GOVERSION']).toString().trim();
  const hash = createHash('sha256');
  for (const f of files) hash.update(readFileSync(join(wrapper, f)));
  const key = `${goVersion}-${hash.digest('hex').slice(0, 10)}`;
  const bin = join(cacheDir(), 'tools', 'ferretdb-upstream', key, 'ferretdb');
  if (existsSync(bin)) return bin;
  const version = /^require github\.com\/FerretDB\/FerretDB (v[0-9.]+)$/m.exec(
    readFileSync(join(wrapper, 'go.mod'), 'utf8'),
  )?.[1];
  if (!version) throw new Error('cannot read the FerretDB version from hack/images/ferretdb/go.mod');
  const env = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' };
  const src = (
    JSON.parse(
      execFileSync('go', ['mod', 'download', '-json', 'github.com/FerretDB/FerretDB'], {
        cwd: wrapper,
        env,
      }).toString(),
    ) as { Dir: string }
  ).Dir;
  mkdirSync(join(cacheDir(), 'tools'), { recursive: true });
  const work = mkdtempSync(join(cacheDir(), 'tools', 'ferretdb-upstream-build-'));
  try {
    for (const f of files) copyFileSync(join(wrapper, f), join(work, f));
    cpSync(src, join(work, 'ferretdb-src'), { recursive: true });
    execFileSync('chmod', ['-R', 'u+w', join(work, 'ferretdb-src')]);
    writeFileSync(join(work, 'ferretdb-src', 'build', 'version', 'version.txt'), `${version}\n`);
    execFileSync('go', ['mod', 'edit', '-replace', 'github.com/FerretDB/FerretDB=./ferretdb-src'], {
      cwd: work,
      env,
    });
    execFileSync(
      'go',
      [
        'build',
        '-p',
        process.env.GO_BUILD_P ?? '2',
        '-trimpath',
        '-ldflags',
        '-s -w',
        '-o',
        join(work, 'ferretdb'),
        'github.com/FerretDB/FerretDB/cmd/ferretdb',
      ],
      { cwd: work, env, stdio: ['ignore', 'inherit', 'inherit'] },
    );
    mkdirSync(dirname(bin), { recursive: true });
    renameSync(join(work, 'ferretdb'), bin); // atomic: parallel builders race harmlessly
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return bin;
}
