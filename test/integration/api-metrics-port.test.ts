import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ApiProcess } from '../harness/api-process.ts';

/**
 * The API process as the chart runs it (node api/src/main.ts): `/metrics` is served on the metrics
 * port only (EPREUVE_METRICS_PORT), and the internet-facing port answers it with a 404 — the
 * counts of failed authentications per status or of each team's assessments are not for strangers.
 */
describe('the API process serves /metrics on its metrics port only', () => {
  const kubeconfig = inject('kubeconfig');
  let api: ApiProcess;

  beforeAll(async () => {
    api = await new ApiProcess(kubeconfig).start();
  }, 60_000);
  afterAll(async () => {
    await api?.stop();
  });

  it('answers /metrics on the public port with a problem+json 404, the metrics nowhere in it', async () => {
    const res = await fetch(`${api.url}/metrics`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(await res.text()).not.toMatch(/http_requests_total|epreuve_api_/);
  });

  it('serves the same registry on the metrics port: the public 404 is counted there', async () => {
    expect((await fetch(`${api.url}/nowhere`)).status).toBe(404);
    const res = await fetch(`http://127.0.0.1:${api.metricsPort}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    expect(body).toMatch(/http_requests_total\{method="GET",route="unmatched",status_code="404"\} [1-9]/);
    expect(body).toMatch(/epreuve_api_process_resident_memory_bytes \d+/);
  });

  it('answers the probes on the metrics port too, ready once the caches are synced', async () => {
    expect((await fetch(`http://127.0.0.1:${api.metricsPort}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${api.metricsPort}/readyz`)).status).toBe(200);
  });
});

describe('the API refuses a metrics port equal to its public port', () => {
  it('exits 2 at start-up, naming EPREUVE_METRICS_PORT', () => {
    const res = spawnSync(
      process.execPath,
      [join(import.meta.dirname, '..', '..', 'api', 'src', 'main.ts')],
      {
        env: { ...process.env, EPREUVE_API_PORT: '18080', EPREUVE_METRICS_PORT: '18080' },
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/EPREUVE_METRICS_PORT: must differ from EPREUVE_API_PORT \(18080\)/);
  });
});
