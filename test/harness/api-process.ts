import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../../hack/cluster/control-plane.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'api', 'src', 'main.ts');

/**
 * The API as a real separate process (node api/src/main.ts), configured only through its
 * environment as the chart configures it: for what happens at start-up (telemetry from OTEL_*
 * variables) and what it writes on stdout.
 */
export class ApiProcess {
  private child?: ChildProcess;
  port = 0;
  /** Where /metrics is served (EPREUVE_METRICS_PORT), never the public port. */
  metricsPort = 0;
  /** stdout and stderr, as written. */
  output = '';

  private readonly kubeconfig: string;
  private readonly env: Record<string, string>;

  constructor(kubeconfig: string, env: Record<string, string> = {}) {
    this.kubeconfig = kubeconfig;
    this.env = env;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** stdout's JSON lines (anything else is skipped). */
  get logLines(): Array<Record<string, unknown>> {
    return this.output.split('\n').flatMap((l) => {
      try {
        return l.startsWith('{') ? [JSON.parse(l) as Record<string, unknown>] : [];
      } catch {
        return [];
      }
    });
  }

  async start(timeoutMs = 30_000): Promise<this> {
    this.port = await freePort();
    this.metricsPort = await freePort();
    this.child = spawn(process.execPath, [MAIN], {
      env: {
        ...process.env,
        KUBECONFIG: this.kubeconfig,
        EPREUVE_API_HOST: '127.0.0.1',
        EPREUVE_API_PORT: String(this.port),
        EPREUVE_METRICS_PORT: String(this.metricsPort),
        EPREUVE_LOG_LEVEL: 'info',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const append = (b: Buffer) => {
      this.output = (this.output + b.toString()).slice(-1_000_000);
    };
    this.child.stdout!.on('data', append);
    this.child.stderr!.on('data', append);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null)
        throw new Error(`api exited while starting:\n${this.output.slice(-3000)}`);
      if (
        await fetch(`${this.url}/readyz`).then(
          (r) => r.ok,
          () => false,
        )
      )
        return this;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`api not ready in ${timeoutMs} ms:\n${this.output.slice(-3000)}`);
  }

  /** Graceful stop (SIGTERM: the API flushes its spans), SIGKILL after 15 s. */
  stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}
