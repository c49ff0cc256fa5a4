import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort, Supervisor } from './supervisor.ts';

export interface ScrapeJob {
  job: string;
  /** host:port of each /metrics endpoint. */
  targets: string[];
  /** Keep the scraped labels when they clash with target labels (the operator's `namespace`). */
  honorLabels?: boolean;
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/**
 * A throwaway Prometheus (Debian's package) on a random loopback port, TSDB on tmpfs: scrapes the
 * given jobs and evaluates the given rule files every `interval`. PROMETHEUS_BIN overrides the binary.
 */
export class PrometheusServer {
  private readonly processes = new Supervisor('epreuve-prometheus');
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(o: {
    jobs: ScrapeJob[];
    ruleFiles?: string[];
    interval?: string;
    timeoutMs?: number;
  }): Promise<this> {
    const interval = o.interval ?? '1s';
    const config = {
      global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
      rule_files: o.ruleFiles ?? [],
      scrape_configs: o.jobs.map((j) => ({
        job_name: j.job,
        honor_labels: j.honorLabels ?? false,
        static_configs: [{ targets: j.targets }],
      })),
    };
    const configFile = join(this.processes.dir, 'prometheus.yml');
    writeFileSync(configFile, stringify(config));
    const data = join(this.processes.dir, 'data');
    mkdirSync(data);
    this.port = await freePort();
    this.processes.spawn('prometheus', prometheusBin(), [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${data}`,
      `--web.listen-address=127.0.0.1:${this.port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ]);
    await this.processes.waitHealthy(
      'prometheus',
      o.timeoutMs ?? 30_000,
      async () => (await fetch(`${this.url}/-/ready`)).ok,
    );
    return this;
  }

  /** Runs a GET against the HTTP API and returns `data`; a query error is thrown with Prometheus's message. */
  async api<T>(path: string, params: Record<string, string | string[]> = {}): Promise<T> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const x of [v].flat()) qs.append(k, x);
    const res = await fetch(`${this.url}/api/v1/${path}?${qs}`);
    const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${path}: ${body.errorType}: ${body.error}`);
    return body.data;
  }

  /** An instant query; returns the samples of a vector result (a scalar comes back as one sample). */
  async query(expr: string): Promise<PromSample[]> {
    const data = await this.api<{ resultType: string; result: unknown }>('query', { query: expr });
    if (data.resultType === 'scalar') return [{ metric: {}, value: data.result as [number, string] }];
    return data.result as PromSample[];
  }

  /** Label sets of the series a selector matches, over the last `seconds`. */
  async series(selector: string, seconds = 600): Promise<Record<string, string>[]> {
    const end = Date.now() / 1000;
    return this.api('series', { 'match[]': selector, start: String(end - seconds), end: String(end) });
  }

  stop(): Promise<void> {
    return this.processes.stop();
  }
}

export function prometheusBin(): string {
  const bin = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';
  if (!existsSync(bin))
    throw new Error(
      `${bin} not found: install Debian's prometheus package (hack/install-deps.sh), or set PROMETHEUS_BIN`,
    );
  return bin;
}

export function promtoolBin(): string {
  const bin = process.env.PROMTOOL_BIN ?? '/usr/bin/promtool';
  if (!existsSync(bin))
    throw new Error(
      `${bin} not found: install Debian's prometheus package (hack/install-deps.sh), or set PROMTOOL_BIN`,
    );
  return bin;
}
