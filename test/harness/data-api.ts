import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const DATA_API_MAIN = join(import.meta.dirname, '..', '..', 'sandboxes', 'src', 'data-api', 'main.ts');

/** The data API as a real process (node sandboxes/src/data-api/main.ts) on a random loopback port. */

export class DataApiProcess {
  private child?: ChildProcess;
  url = '';
  output = '';
  exit?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  async start(env: Record<string, string>): Promise<this> {
    this.child = spawn(process.execPath, [DATA_API_MAIN], {
      // A clean environment: only what this test sets reaches the server.
      env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', DATASET_SIZE: 'small', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const child = this.child;
    this.exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const append = (b: Buffer) => {
      this.output += b.toString();
    };
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const m = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(this.output);
      if (m) {
        this.url = m[1]!;
        return this;
      }
      if (child.exitCode !== null) break;
      await sleep(50);
    }
    throw new Error(`data API did not start:\n${this.output.slice(-3000)}`);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM') {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exit;
  }
}
