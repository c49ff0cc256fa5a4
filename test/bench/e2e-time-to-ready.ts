/**
 * Time to Ready on a real node (make bench, e2e tier): from POST /assessments to phase Ready —
 * namespace, policies, two StatefulSets with volumes, the data API, and the seed Job loading the
 * datasets — for BENCH_ASSESSMENTS (default 10) assessments, two in flight, p50/p95. Baseline,
 * measured in the same run on the same node: a bare PostgreSQL StatefulSet with a volume (same
 * image) becoming Ready — what Kubernetes alone takes to start one database. Reported as ratios.
 * Starts the built-in cluster (hack/cluster) unless one is running.
 */
import { join } from 'node:path';
import { LocalCluster, readState } from '../../hack/cluster/cluster.ts';
import { applySampleTemplate, installPlatform, kubectl } from '../../hack/cluster/platform.ts';
import { percentile, pool } from './stats.ts';

const COUNT = Number(process.env.BENCH_ASSESSMENTS ?? 10);
const TEAM = 'bench';
const API = 'http://10.244.0.1:30080';
const say = (m: string) => console.log(`e2e bench: ${m}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const running = readState();
const cluster = running?.ready ? undefined : new LocalCluster();
await cluster?.start({ progress: say });
const kubeconfig = cluster?.kubeconfigPath ?? running!.kubeconfig;
try {
  const { apiKey } = await installPlatform({
    kubeconfig,
    valuesFiles: [join(import.meta.dirname, '..', 'e2e', 'values.yaml')],
    teams: [TEAM],
    progress: say,
  });
  await applySampleTemplate(kubeconfig, TEAM, 'data-engineer');
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${API}${path}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
  };

  // Baseline: a bare database StatefulSet, three times (median).
  const baseline: number[] = [];
  for (let i = 0; i < 3; i++) {
    const name = `bare-${i}`;
    const sts = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name, namespace: TEAM },
      spec: {
        replicas: 1,
        serviceName: name,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: {
            securityContext: { fsGroup: 999, runAsUser: 999, runAsNonRoot: true },
            containers: [
              {
                name: 'postgres',
                image: 'localhost/postgres:15',
                imagePullPolicy: 'IfNotPresent',
                env: [
                  { name: 'POSTGRES_PASSWORD', value: 'bench' },
                  { name: 'PGDATA', value: '/var/lib/postgresql/data/pgdata' },
                ],
                readinessProbe: { exec: { command: ['pg_isready', '-h', '127.0.0.1'] }, periodSeconds: 1 },
                volumeMounts: [{ name: 'data', mountPath: '/var/lib/postgresql/data' }],
              },
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data' },
            spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
          },
        ],
      },
    };
    const t0 = Date.now();
    await kubectl(kubeconfig, ['apply', '-f', '-'], JSON.stringify(sts));
    await kubectl(kubeconfig, ['-n', TEAM, 'rollout', 'status', `statefulset/${name}`, '--timeout=300s']);
    baseline.push(Date.now() - t0);
    await kubectl(kubeconfig, ['-n', TEAM, 'delete', 'statefulset', name, '--wait=true']);
    await kubectl(kubeconfig, ['-n', TEAM, 'delete', 'pvc', `data-${name}-0`, '--wait=false']);
  }
  const base = percentile(baseline, 50);
  say(
    `baseline (bare PostgreSQL StatefulSet with a volume): ${baseline.map((b) => `${(b / 1000).toFixed(1)} s`).join(', ')}`,
  );

  const times: number[] = [];
  const names = Array.from({ length: COUNT }, (_, i) => `bench-${Date.now().toString(36)}-${i}`);
  await pool(names, 2, async (name) => {
    const t0 = Date.now();
    const created = await call('POST', `/api/v1/teams/${TEAM}/assessments`, {
      name,
      templateRef: { name: 'data-engineer' },
      candidate: { name: 'Bench', email: 'bench@example.com' },
    });
    if (created.status !== 201) throw new Error(`create ${name}: ${JSON.stringify(created.body)}`);
    for (;;) {
      const a = await call('GET', `/api/v1/teams/${TEAM}/assessments/${name}`);
      if (a.body.phase === 'Ready') break;
      if (Date.now() - t0 > 600_000) throw new Error(`${name} not Ready after 10 minutes`);
      await sleep(250);
    }
    times.push(Date.now() - t0);
    say(`${name} Ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await call('DELETE', `/api/v1/teams/${TEAM}/assessments/${name}`);
  });
  const p50 = percentile(times, 50);
  const p95 = percentile(times, 95);
  console.log(
    [
      '',
      `time to Ready on the built-in node, ${COUNT} assessments (data-engineer: PostgreSQL + MongoDB + data API + seed), 2 in flight:`,
      `  p50 ${(p50 / 1000).toFixed(1)} s = ${(p50 / base).toFixed(2)}× baseline`,
      `  p95 ${(p95 / 1000).toFixed(1)} s = ${(p95 / base).toFixed(2)}× baseline`,
      `  baseline: a bare PostgreSQL StatefulSet with a volume Ready in ${(base / 1000).toFixed(1)} s (median of 3)`,
      '',
    ].join('\n'),
  );
} finally {
  await cluster?.stop();
}
