import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Starts local server processes for tests and dev clusters: each logs to a file in a run
 * directory on tmpfs; a failed start reports the tail of its log; stop() ends every process and
 * removes the directory; and a watchdog shell kills them all if the Node process that started
 * them dies without stopping them, so nothing outlives a run.
 */
export class Supervisor {
  readonly dir: string;
  private readonly children: Array<{ name: string; process: ChildProcess; logPath: string }> = [];
  private reaper?: ChildProcess;

  constructor(prefix: string) {
    const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
    this.dir = mkdtempSync(join(base, `${prefix}-`));
  }

  get pids(): number[] {
    return this.children.map((c) => c.process.pid).filter((p): p is number => p !== undefined);
  }

  spawn(
    name: string,
    binary: string,
    args: string[],
    opts: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {},
  ): ChildProcess {
    const logPath = join(this.dir, `${name}.log`);
    const log = openSync(logPath, 'a');
    const child = spawn(binary, args, {
      stdio: ['ignore', log, log],
      uid: opts.uid,
      gid: opts.gid,
      env: opts.env ?? process.env,
    });
    closeSync(log);
    child.on('error', () => {}); // surfaced by waitHealthy through the log and exit code
    this.children.push({ name, process: child, logPath });
    this.armReaper();
    return child;
  }

  private armReaper(): void {
    this.reaper?.kill('SIGKILL');
    // Unmount first and never cross into another filesystem: a node's run directory holds
    // container root filesystems and volume mounts that must not be emptied.
    const script = `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 ${this.pids.join(' ')} 2>/dev/null; awk '$5 ~ "^${this.dir}/" {print $5}' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null; rm -rf --one-file-system '${this.dir}'`;
    this.reaper = spawn('bash', ['-c', script], { detached: true, stdio: 'ignore' });
    this.reaper.unref();
  }

  /** Polls `probe` until it answers true; fails early, with the log's tail, if the process exits. */
  async waitHealthy(name: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
    const child = this.children.find((c) => c.name === name);
    if (!child) throw new Error(`no process named ${name}`);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (child.process.exitCode !== null || child.process.signalCode !== null) {
        throw new Error(
          `${name} exited (${child.process.exitCode ?? child.process.signalCode}) while starting; last log lines:\n${tail(child.logPath)}`,
        );
      }
      try {
        if (await probe()) return;
      } catch {
        // not listening yet
      }
      await sleep(200);
    }
    throw new Error(`${name} not healthy after ${timeoutMs} ms; last log lines:\n${tail(child.logPath)}`);
  }

  /** Stops one process (SIGTERM, then SIGKILL after 10 s); the others keep running. */
  async stopOne(name: string): Promise<void> {
    const child = this.children.find((c) => c.name === name);
    if (child) await stopProcess(child.process);
  }

  /**
   * Stops every process, newest first (SIGTERM, then SIGKILL after 10 s), and removes the
   * directory unless told to keep it (a node unmounts what is below it first).
   */
  async stop(opts: { keepDir?: boolean } = {}): Promise<void> {
    for (const c of [...this.children].reverse()) await stopProcess(c.process);
    this.children.length = 0;
    this.reaper?.kill('SIGKILL');
    if (!opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const stopped = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
  if (!stopped) {
    child.kill('SIGKILL');
    await exited;
  }
}

export function tail(path: string, lines = 40): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
