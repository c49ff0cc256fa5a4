import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { type Assessment, KINDS, sandboxHostLabel } from '@epreuve/crds';
import { type KubeObject, resourceFor, serveOps } from '@epreuve/kube';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { candidateNamespace } from '../../crds/src/index.ts';
import { freePort } from '../../hack/cluster/control-plane.ts';
import { PrometheusServer, promtoolBin } from '../../hack/cluster/prometheus.ts';
import { startApi } from '../harness/api.ts';
import { assessmentObject } from '../harness/fixtures.ts';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';
import { reportPodsReady } from '../harness/kubelet-stand-in.ts';
import { TestIssuer } from '../harness/oidc.ts';
import { OperatorProcess } from '../harness/operator.ts';

/**
 * The chart's dashboards and alert rules, checked by Prometheus's own tools: promtool parses every
 * expression and unit-tests every alert; then a real Prometheus scrapes a real operator and API
 * while assessments are provisioned, and every expression must find its series.
 */
const CHART = join(import.meta.dirname, '..', '..', 'charts', 'epreuve');
const RULES = join(CHART, 'rules', 'epreuve.rules.yaml');
const RULE_TESTS = join(CHART, 'rules', 'epreuve.rules.test.yaml');
const DASHBOARDS = join(CHART, 'dashboards');
const tmp = mkdtempSync(join(tmpdir(), 'epreuve-promtool-'));

/**
 * Metrics only a kubelet exposes (cAdvisor, volume stats): the integration tier has no kubelet,
 * so the panels that use them are the one documented exception to "returns data"; the
 * end-to-end tier (a real node) is where they can be seen.
 */
const KUBELET_ONLY = [
  'container_cpu_usage_seconds_total',
  'container_memory_working_set_bytes',
  'kubelet_volume_stats_used_bytes',
];
/**
 * The gateway counts a connection as open once its database has accepted a login. The integration
 * tier's sandboxes are Services without pods, so the gateway routes to them and fails (the backend
 * errors below), but never holds one open: these panels are the second documented exception. The
 * end-to-end tier's candidate connects psql through the gateway for real.
 */
const ESTABLISHED_ONLY = ['epreuve_gateway_active_connections'];
const ESTABLISHED_ONLY_PANELS = [
  'overview: Candidate connections open',
  'overview: Gateway connections open by kind',
];
const KUBELET_ONLY_PANELS = [
  'candidate-namespaces: CPU: usage and quota',
  'candidate-namespaces: Memory: working set and quota',
  'candidate-namespaces: Storage: volumes used and quota',
];

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template
const DATASOURCE = '${datasource}';

interface Panel {
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: Array<{ expr: string; datasource?: { uid: string } }>;
  panels?: Panel[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: string | { query: string } }> };
}
interface Expr {
  where: string;
  expr: string;
}

const dashboards = Object.fromEntries(
  readdirSync(DASHBOARDS)
    .filter((f) => f.endsWith('.json'))
    .map((f) => [
      f.replace(/\.json$/, ''),
      JSON.parse(readFileSync(join(DASHBOARDS, f), 'utf8')) as Dashboard,
    ]),
);

/** Grafana's variables as the test queries them: the widest rate window, every namespace. */
const substitute = (expr: string) => expr.replaceAll('$__rate_interval', '5m').replaceAll('$namespace', '.*');

function dashboardExprs(): Expr[] {
  const out: Expr[] = [];
  for (const [file, d] of Object.entries(dashboards)) {
    const walk = (panels: Panel[]) => {
      for (const p of panels) {
        for (const t of p.targets ?? []) out.push({ where: `${file}: ${p.title}`, expr: substitute(t.expr) });
        walk(p.panels ?? []);
      }
    };
    walk(d.panels);
    for (const v of d.templating.list.filter((v) => v.type === 'query')) {
      const q = typeof v.query === 'string' ? v.query : v.query.query;
      // label_values(<selector>, label) is Grafana's; the selector inside is PromQL.
      const m = /^label_values\((.+),\s*\w+\)$/.exec(q);
      out.push({ where: `${file}: $${v.name}`, expr: m ? m[1]! : q });
    }
  }
  return out;
}

const rules = parse(readFileSync(RULES, 'utf8')) as {
  groups: Array<{
    name: string;
    rules: Array<{ alert: string; expr: string; annotations: Record<string, string> }>;
  }>;
};
const alerts = rules.groups.flatMap((g) => g.rules);

/** The vector selectors of an expression: every `metric{matchers}`. */
const selectors = (expr: string) => [...expr.matchAll(/([a-zA-Z_:][\w:]*)\{([^}]*)\}/g)].map((m) => m[0]);

function promtool(args: string[], cwd?: string) {
  const res = spawnSync(promtoolBin(), args, { encoding: 'utf8', cwd });
  return { code: res.status, out: `${res.stdout}${res.stderr}` };
}

/** Writes one recording rule per expression, so `promtool check rules` parses each one. */
function asRecordingRules(exprs: Expr[]): string {
  const file = join(tmp, `exprs-${exprs.length}-${Date.now()}.yaml`);
  const records = exprs.map((e, i) => ({ record: `epreuve:dashboard_expr:${i}`, expr: e.expr }));
  writeFileSync(file, stringify({ groups: [{ name: 'dashboards', rules: records }] }));
  return file;
}

describe('promtool', () => {
  it('accepts the rule file', () => {
    const res = promtool(['check', 'rules', RULES]);
    expect(res.out).toContain(`SUCCESS: ${alerts.length} rules found`);
    expect(res.code).toBe(0);
  });

  it('passes the alerts unit tests, and every alert has one that fires it', () => {
    const res = promtool(['test', 'rules', RULE_TESTS], join(CHART, 'rules'));
    expect(res.out).toContain('SUCCESS');
    expect(res.code).toBe(0);
    const tests = parse(readFileSync(RULE_TESTS, 'utf8')) as {
      tests: Array<{ alert_rule_test: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
    };
    const fired = new Set(
      tests.tests.flatMap((t) =>
        t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname),
      ),
    );
    expect([...fired].sort()).toEqual(alerts.map((a) => a.alert).sort());
  });

  it('gives every alert a summary, a description and a runbook', () => {
    expect(alerts.map((a) => a.alert).sort()).toEqual([
      'EpreuveApiHighErrorRatio',
      'EpreuveAssessmentStuckProvisioning',
      'EpreuveGatewayBackendErrors',
      'EpreuveGatewayDown',
      'EpreuveOperatorNoLeader',
      'EpreuveReconcileErrors',
      'EpreuveTeamNearBudget',
      'EpreuveWarmPoolEmpty',
    ]);
    for (const a of alerts)
      expect(Object.keys(a.annotations).sort()).toEqual(['description', 'runbook', 'summary']);
  });

  it('parses every dashboard expression', () => {
    const exprs = dashboardExprs();
    expect(exprs.length).toBeGreaterThan(40);
    const res = promtool(['check', 'rules', asRecordingRules(exprs)]);
    expect(res.out).toContain(`SUCCESS: ${exprs.length} rules found`);
    expect(res.code).toBe(0);
  });

  it('rejects a broken expression (so the check above can fail)', () => {
    const res = promtool([
      'check',
      'rules',
      asRecordingRules([{ where: 'broken', expr: 'sum by (route (rate(http_requests_total[5m]))' }]),
    ]);
    expect(res.code).not.toBe(0);
    expect(res.out).toMatch(/parse error/);
  });
});

describe('dashboards', () => {
  it('are the four documented, with unique uids, on a data source variable', () => {
    expect(
      Object.values(dashboards)
        .map((d) => d.title)
        .sort(),
    ).toEqual(['Épreuve API', 'Épreuve candidate namespaces', 'Épreuve operator', 'Épreuve overview']);
    expect(new Set(Object.values(dashboards).map((d) => d.uid)).size).toBe(4);
    for (const d of Object.values(dashboards)) {
      expect(d.schemaVersion).toBeGreaterThanOrEqual(39);
      expect(d.templating.list[0]).toMatchObject({
        name: 'datasource',
        type: 'datasource',
        query: 'prometheus',
      });
      for (const p of d.panels.filter((p) => p.type !== 'row')) {
        expect(p.datasource?.uid, p.title).toBe(DATASOURCE);
        for (const t of p.targets ?? []) expect(t.datasource?.uid, p.title).toBe(DATASOURCE);
      }
    }
  });

  it('use kubelet-only and established-connection metrics exactly in the documented panels', () => {
    const nodeOnly = dashboardExprs().filter((e) => KUBELET_ONLY.some((m) => e.expr.includes(m)));
    expect(nodeOnly.map((e) => e.where).sort()).toEqual(KUBELET_ONLY_PANELS);
    const establishedOnly = dashboardExprs().filter((e) => ESTABLISHED_ONLY.some((m) => e.expr.includes(m)));
    expect(establishedOnly.map((e) => e.where).sort()).toEqual(ESTABLISHED_ONLY_PANELS);
  });
});

/** Opens a TLS connection to the gateway for `servername` and waits for the gateway to close it. */
const gatewayConnection = (port: number, servername: string) =>
  new Promise<void>((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port,
      servername,
      rejectUnauthorized: false,
      ALPNProtocols: ['postgresql'],
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the gateway kept ${servername} open`));
    }, 20_000);
    socket.on('error', () => {}); // the gateway ends refused and failed connections: expected
    socket.resume(); // read its error message to the end, so the close is seen
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });

describe('a real Prometheus scraping the operator, the API and the gateway while assessments are provisioned', () => {
  const kubeconfig = inject('kubeconfig');
  const client = kube(kubeconfig);
  const ASMT = KINDS.Assessment;
  const NS = resourceFor('v1', 'Namespace');
  const issuer = new TestIssuer();
  const API_KEY = 'epk_monitoring-test-key-0123456789';
  const prometheus = new PrometheusServer();
  let team: string;
  let leaseNs: string;
  let operator: OperatorProcess;
  let api: Awaited<ReturnType<typeof startApi>>;
  let apiUrl: string;
  // The API's metrics port, served as main.ts serves it (serveOps over the app's registry).
  let apiMetrics: ReturnType<typeof serveOps>;
  let apiMetricsPort: number;
  // The sandbox gateway: a self-signed certificate, routes from the same Assessments.
  const DOMAIN = 'sandbox.test';
  let gateway: ChildProcess;
  let gatewayLog = '';
  const gatewayPorts = { sandboxes: 0, metrics: 0 };
  const started = Date.now();
  const timings: Record<string, number> = {};

  const phase = async (name: string) =>
    (await client.get<KubeObject & { status?: { phase?: string } }>(ASMT, team, name))?.status?.phase;
  const call = async (path: string) => {
    const res = await fetch(`${apiUrl}${path}`, { headers: { authorization: `Bearer ${API_KEY}` } });
    const body = await res.text();
    if (res.status >= 500 && !body.includes('overloaded')) throw new Error(`${path}: ${res.status} ${body}`);
    return res.status;
  };

  beforeAll(async () => {
    await issuer.start();
    team = await createTestNamespace(kubeconfig, 'mon');
    leaseNs = await createTestNamespace(kubeconfig, 'mon-system');
    await client.apply(
      {
        ...parse(readFileSync(join(CHART, 'samples', 'data-engineer.yaml'), 'utf8')),
        metadata: { name: 'data-engineer', namespace: team },
      } as KubeObject,
      { fieldManager: 'test' },
    );
    // A template with a warm pool, for the pool panels and EpreuveWarmPoolEmpty's series.
    const sample = parse(readFileSync(join(CHART, 'samples', 'data-engineer.yaml'), 'utf8'));
    await client.apply(
      {
        ...sample,
        metadata: { name: 'pooled', namespace: team },
        spec: { ...sample.spec, pool: { min: 1 } },
      } as KubeObject,
      { fieldManager: 'test' },
    );
    operator = await new OperatorProcess(kubeconfig, {
      EPREUVE_LEADER_ELECT: 'true',
      EPREUVE_LEADER_ELECTION_NAMESPACE: leaseNs,
    }).start();
    api = await startApi(kubeconfig, {
      issuer,
      apiKey: API_KEY,
      apiKeyTeams: [team],
      // Low enough to be hit below; the event loop threshold lets the test provoke load shedding.
      env: {
        EPREUVE_RATE_LIMIT_PER_MINUTE: '40',
        EPREUVE_MAX_EVENT_LOOP_DELAY_MS: '250',
        EPREUVE_LOAD_SAMPLE_INTERVAL_MS: '100',
      },
    });
    await api.app.listen({ host: '127.0.0.1', port: 0 });
    apiUrl = `http://127.0.0.1:${(api.app.server.address() as AddressInfo).port}`;
    apiMetricsPort = await freePort();
    apiMetrics = serveOps({
      port: apiMetricsPort,
      host: '127.0.0.1',
      metrics: api.app.metricsRegistry,
      ready: () => true,
      log: api.app.log as never,
      what: 'API metrics',
    });

    const certDir = mkdtempSync(join(tmpdir(), 'epreuve-mon-gateway-'));
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-days', '1', '-subj', `/CN=*.${DOMAIN}`, '-addext', `subjectAltName=DNS:*.${DOMAIN}`],
        ...['-keyout', join(certDir, 'tls.key'), '-out', join(certDir, 'tls.crt')],
      ],
      { stdio: 'ignore' },
    );
    gatewayPorts.sandboxes = await freePort();
    gatewayPorts.metrics = await freePort();
    gateway = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'gateway', 'src', 'main.ts')], {
      env: {
        ...process.env,
        KUBECONFIG: kubeconfig,
        EPREUVE_GATEWAY_HOST: '127.0.0.1',
        EPREUVE_GATEWAY_PORT: String(gatewayPorts.sandboxes),
        EPREUVE_METRICS_PORT: String(gatewayPorts.metrics),
        EPREUVE_GATEWAY_DOMAIN: DOMAIN,
        EPREUVE_GATEWAY_TLS_CERT_FILE: join(certDir, 'tls.crt'),
        EPREUVE_GATEWAY_TLS_KEY_FILE: join(certDir, 'tls.key'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    gateway.stdout!.on('data', (b: Buffer) => (gatewayLog += b.toString()));
    gateway.stderr!.on('data', (b: Buffer) => (gatewayLog += b.toString()));
    await eventually(async () => expect(gatewayLog).toContain('sandbox gateway listening'), 30_000);

    await prometheus.start({
      jobs: [
        { job: 'epreuve-operator-metrics', targets: [`127.0.0.1:${operator.port}`], honorLabels: true },
        { job: 'epreuve-api-metrics', targets: [`127.0.0.1:${apiMetricsPort}`] },
        { job: 'epreuve-gateway-metrics', targets: [`127.0.0.1:${gatewayPorts.metrics}`] },
      ],
      ruleFiles: [RULES],
      interval: '1s',
    });
    timings.prometheusReadyMs = Date.now() - started;

    // Three candidates get ready sandboxes, one assessment fails, one is revoked.
    const names = ['ada', 'bob', 'cyd'];
    for (const n of names) await client.create(assessmentObject(team, n) as KubeObject);
    await client.create(assessmentObject(team, 'dee', { duration: '9h' }) as KubeObject);
    await eventually(
      async () => {
        for (const n of names) await reportPodsReady(client, candidateNamespace(team, n));
        for (const n of names) expect(await phase(n), n).toBe('Ready');
        expect(await phase('dee'), 'dee').toBe('Failed');
      },
      // A hang guard, not a timing goal: the operator also re-checks what earlier files left.
      150_000,
      500,
    ).catch(async (err) => {
      // The log first and the verdict last: CI shows the end of the output.
      const phases = await Promise.all([...names, 'dee'].map(async (n) => `${n}=${await phase(n)}`));
      throw new Error(
        `operator log:\n${operator.output.slice(-3000)}\n${err.message}\nphases: ${phases.join(' ')}`,
      );
    });
    timings.provisionedMs = Date.now() - started;
    // ada's sandboxes are named by the host key the real operator drew and stored.
    const adaKey = (await client.get<Assessment & KubeObject>(ASMT, team, 'ada'))?.status?.hostKey;
    expect(adaKey).toMatch(/^[a-z2-7]{16}$/);
    await client.mergePatch(ASMT, team, 'cyd', { spec: { revoked: true } });
    await eventually(async () => expect(await phase('cyd')).toBe('Expired'), 30_000);

    // API traffic in two rounds (rates need an increase between scrapes): 200s, a 404, 429s, a 503.
    // Gateway traffic alongside: a name nobody has (refused), and ada's database, routed but
    // unreachable from this machine (its Service exists only as a name: a backend error).
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 5; i++) expect(await call(`/api/v1/teams/${team}/assessments`)).toBe(200);
      expect(await call('/nowhere')).toBe(404);
      await gatewayConnection(gatewayPorts.sandboxes, `nobody-0000.${DOMAIN}`);
      await gatewayConnection(gatewayPorts.sandboxes, `${sandboxHostLabel(adaKey!, 'warehouse')}.${DOMAIN}`);
      await new Promise((r) => setTimeout(r, 2500));
    }
    await eventually(async () => {
      const busyUntil = Date.now() + 800;
      while (Date.now() < busyUntil) {
        // block the event loop, as a flood of requests would, so the API sheds load
      }
      await new Promise((r) => setTimeout(r, 30));
      expect(await call(`/api/v1/teams/${team}/assessments`)).toBe(503);
    }, 20_000);
    await eventually(
      async () => expect(await call(`/api/v1/teams/${team}/assessments`)).toBe(429),
      20_000,
      0,
    );

    // Every series is in once the next scrapes have happened.
    await eventually(async () => {
      expect(
        await prometheus.series('epreuve_api_rate_limited_total{job="epreuve-api-metrics"}'),
      ).not.toEqual([]);
      expect(
        await prometheus.series('http_requests_total{job="epreuve-api-metrics",status_code="503"}'),
      ).not.toEqual([]);
      expect(await prometheus.series('epreuve_expired_total{reason="Revoked"}')).not.toEqual([]);
      expect(
        await prometheus.series(
          'epreuve_gateway_connections_total{job="epreuve-gateway-metrics",kind="postgres",result="backend_error"}',
        ),
      ).not.toEqual([]);
    }, 20_000);
    await new Promise((r) => setTimeout(r, 3000));
    timings.trafficDoneMs = Date.now() - started;
  }, 240_000);

  afterAll(async () => {
    console.info('monitoring test timings (ms since start):', timings);
    await prometheus.stop();
    gateway?.kill('SIGTERM');
    apiMetrics?.close();
    await api?.stop();
    await operator?.stop();
    await issuer.stop();
    for (const ns of [team, leaseNs]) if (ns) await client.delete(NS, undefined, ns);
  });

  it('scrapes the three targets', async () => {
    const up = await prometheus.query('up');
    expect(Object.fromEntries(up.map((s) => [s.metric.job, s.value[1]]))).toEqual({
      'epreuve-operator-metrics': '1',
      'epreuve-api-metrics': '1',
      'epreuve-gateway-metrics': '1',
    });
  });

  it('answers every dashboard expression with data (kubelet-only and established-connection panels excepted)', async () => {
    const empty: string[] = [];
    let queried = 0;
    for (const e of dashboardExprs()) {
      if ([...KUBELET_ONLY, ...ESTABLISHED_ONLY].some((m) => e.expr.includes(m))) continue;
      queried++;
      if ((await prometheus.query(e.expr)).length === 0) empty.push(`${e.where}: ${e.expr}`);
    }
    expect(empty).toEqual([]);
    expect(queried).toBeGreaterThan(40);
  });

  it('shows the assessments the test made: by phase, with quota hard and used per candidate namespace', async () => {
    const byPhase = await prometheus.query(
      'max by (phase) (epreuve_assessments{job="epreuve-operator-metrics"})',
    );
    const phases = Object.fromEntries(byPhase.map((s) => [s.metric.phase, Number(s.value[1])]));
    expect(phases.Ready).toBeGreaterThanOrEqual(2);
    expect(phases.Failed).toBeGreaterThanOrEqual(1);
    expect(phases.Expired).toBeGreaterThanOrEqual(1);
    const ns = candidateNamespace(team, 'ada');
    const quota = await prometheus.query(
      `epreuve_namespace_quota{job="epreuve-operator-metrics",namespace="${ns}",resource="pods"}`,
    );
    expect(Object.fromEntries(quota.map((s) => [s.metric.type, Number(s.value[1])]))).toEqual({
      hard: 16,
      used: expect.any(Number),
    });
    expect(quota[0]!.metric.assessment).toBe('ada');
  });

  it('finds the series of every alert rule selector, and evaluates every rule without error', async () => {
    const missing: string[] = [];
    for (const a of alerts)
      for (const s of selectors(a.expr))
        if ((await prometheus.series(s)).length === 0) missing.push(`${a.alert}: ${s}`);
    expect(missing).toEqual([]);

    const loaded = await prometheus.api<{
      groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string; state: string }> }>;
    }>('rules');
    const evaluated = loaded.groups.flatMap((g) => g.rules);
    expect(evaluated.map((r) => [r.name, r.health, r.lastError ?? '']).sort()).toEqual(
      alerts.map((a) => [a.alert, 'ok', '']).sort(),
    );
    // A healthy run: a leader, nothing stuck.
    const state = Object.fromEntries(evaluated.map((r) => [r.name, r.state]));
    expect(state.EpreuveOperatorNoLeader).toBe('inactive');
    expect(state.EpreuveAssessmentStuckProvisioning).toBe('inactive');
    expect(state.EpreuveGatewayDown).toBe('inactive');
  });

  it('counts the shed requests the 5xx alert is about', async () => {
    const [shed] = await prometheus.query(
      'sum(http_requests_total{job="epreuve-api-metrics",status_code="503"})',
    );
    expect(Number(shed?.value[1])).toBeGreaterThanOrEqual(1);
  });
});
