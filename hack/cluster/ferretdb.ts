import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { HACK_DIR } from './assets.ts';
import { freePort, Supervisor } from './supervisor.ts';

/**
 * A real MongoDB wire-protocol server for tests: FerretDB v1 with its SQLite backend (pinned in
 * hack/tools/ferretdb, built from the Go module proxy), data on tmpfs. TEST_ASSET_FERRETDB points
 * at another binary. It has no user management: tests connect without credentials.
 */
export class FerretServer {
  private readonly processes = new Supervisor('epreuve-ferret');
  port = 0;

  get url(): string {
    return `mongodb://127.0.0.1:${this.port}/`;
  }

  async start(timeoutMs = 60_000): Promise<this> {
    const bin =
      process.env.TEST_ASSET_FERRETDB ??
      execFileSync(join(HACK_DIR, 'build-go-tool.sh'), ['ferretdb'], { stdio: ['ignore', 'pipe', 'inherit'] })
        .toString()
        .trim();
    this.port = await freePort();
    const dir = this.processes.dir;
    this.processes.spawn('ferretdb', bin, [
      `--sqlite-dir=${dir}/data`,
      `--listen-addr=127.0.0.1:${this.port}`,
      '--log-level=warn',
    ]);
    await this.processes.waitHealthy('ferretdb', timeoutMs, async () => {
      const client = new MongoClient(this.url, { serverSelectionTimeoutMS: 1000 });
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
