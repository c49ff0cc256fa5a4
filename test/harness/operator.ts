import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../../hack/cluster/control-plane.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'operator', 'src', 'main.ts');

/**
 * The operator as a real separate process (node operator/src/main.ts), as it runs in a pod:
 * tests can SIGKILL it mid-work and start another, or run two for leader election.
 */
export class OperatorProcess {
  private child?: ChildProcess;
  port = 0;
  output = '';
  /** Every whole output line so far, counted by a test's matcher (the output above is cut). */
  private readonly counters = new Map<(line: string) => boolean, number>();
  private partial = '';
  private readonly env: Record<string, string>;
  private readonly main: string;
  private readonly nodeArgs: string[];

  /**
   * `main`: the entry point node runs, the `.ts` sources unless a bench runs the image's bundle;
   * `nodeArgs`: node's own flags before it (a bench passes the image's, which NODE_OPTIONS refuses).
   */
  constructor(kubeconfig: string, env: Record<string, string> = {}, main = MAIN, nodeArgs: string[] = []) {
    this.env = { KUBECONFIG: kubeconfig, EPREUVE_LOG_LEVEL: 'info', ...env };
    this.main = main;
    this.nodeArgs = nodeArgs;
  }

  async start(): Promise<this> {
    this.port = await freePort();
    this.output = '';
    this.child = spawn(process.execPath, [...this.nodeArgs, this.main], {
      env: { ...process.env, ...this.env, EPREUVE_METRICS_PORT: String(this.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const append = (b: Buffer) => {
      this.output = (this.output + b.toString()).slice(-200_000);
      if (this.counters.size === 0) return;
      const lines = (this.partial + b.toString()).split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines)
        for (const [matches, n] of this.counters) if (matches(line)) this.counters.set(matches, n + 1);
    };
    this.child.stdout!.on('data', append);
    this.child.stderr!.on('data', append);
    await this.waitFor(
      async () => (await fetch(`http://127.0.0.1:${this.port}/healthz`)).ok,
      20_000,
      'healthz',
    );
    return this;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get exited(): boolean {
    return !this.child || this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** Counts the output lines `matches` accepts from now on; read the count with the returned function. */
  countLines(matches: (line: string) => boolean): () => number {
    this.counters.set(matches, 0);
    return () => this.counters.get(matches) ?? 0;
  }

  /** Scrapes /metrics and returns the sum of a metric's samples whose labels contain `labels`. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.port}/metrics`)).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const ok = Object.entries(labels).every(([k, v]) => m[2]?.includes(`${k}="${v}"`));
      if (ok) sum += Number(m[3]);
    }
    return sum;
  }

  async waitFor(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exited)
        throw new Error(`operator exited while waiting for ${what}:\n${this.output.slice(-3000)}`);
      if (await probe().catch(() => false)) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`operator: ${what} not reached in ${timeoutMs} ms:\n${this.output.slice(-3000)}`);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }

  /** Graceful stop (SIGTERM), as the kubelet does; SIGKILL after 15 s. */
  async stop(): Promise<void> {
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 15_000);
    await this.kill('SIGTERM');
    clearTimeout(timer);
  }
}
