/**
 * Provisioning benchmark on the integration control plane (make bench):
 *   baseline — a raw client server-side applies each assessment's object bundle (the same pure
 *              desired-state functions, the same secrets), 4 bundles at a time, at the operator's
 *              QPS budget (20 qps, burst 30);
 *   operator — N Assessment CRs are created; fan-out is CR created → Provisioned=True (every
 *              object applied), seen through a watch.
 * Prints p50/p95 fan-out, throughput, and operator/baseline as a ratio. BENCH_N (default 200).
 */
import { randomBytes } from 'node:crypto';
import { KINDS } from '@epreuve/crds';
import { KubeClient, type KubeObject } from '@epreuve/kube';
import { KubeConfig } from '@kubernetes/client-node';
import {
  type Assessment,
  type AssessmentTemplate,
  assessmentSpec,
  assessmentTemplateSpec,
  FIELD_MANAGER,
} from '../../crds/src/index.ts';
import { ControlPlane } from '../../hack/cluster/control-plane.ts';
import { credentialsSecret, desiredObjects } from '../../operator/src/assessment/desired.ts';
import { loadConfig } from '../../operator/src/config.ts';
import { assessmentObject, sample } from '../harness/fixtures.ts';
import { installCrds, kube } from '../harness/kube.ts';
import { OperatorProcess } from '../harness/operator.ts';
import { ms, percentile, pool, ratio } from './stats.ts';

const N = Number(process.env.BENCH_N ?? 200);
const QPS = 20;
const BURST = 30;
const WORKERS = 4;

const cp = process.env.USE_EXISTING_CLUSTER === 'true' ? undefined : new ControlPlane();
await cp?.start();
const kubeconfig = cp?.kubeconfigPath ?? process.env.KUBECONFIG!;
try {
  await installCrds(kubeconfig);
  const admin = kube(kubeconfig);
  const templateBody = sample<AssessmentTemplate>('data-engineer.yaml');

  // ---- baseline: a raw client applying the same bundles at the same budget ----
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const raw = new KubeClient(kc, { qps: QPS, burst: BURST, kinds: Object.values(KINDS) });
  const config = loadConfig({});
  const template: AssessmentTemplate = {
    ...templateBody,
    metadata: { name: 'data-engineer', namespace: 'bench-raw' },
    spec: assessmentTemplateSpec.parse(templateBody.spec),
  };
  const baselineLatencies: number[] = [];
  const baselineStart = performance.now();
  await pool([...Array(N).keys()], WORKERS, async (i) => {
    const a: Assessment = {
      ...(assessmentObject('bench-raw', `raw-${i}`) as unknown as Assessment),
      spec: assessmentSpec.parse(assessmentObject('bench-raw', `raw-${i}`).spec),
    };
    const ctx = { assessment: a, template, config };
    const [ns, ...rest] = desiredObjects(ctx);
    const t0 = performance.now();
    await raw.apply(ns!, { fieldManager: FIELD_MANAGER });
    for (const s of template.spec.sandboxes) await raw.create(credentialsSecret(ctx, s, randomBytes));
    await Promise.all(rest.map((o) => raw.apply(o, { fieldManager: FIELD_MANAGER })));
    baselineLatencies.push(performance.now() - t0);
  });
  const baselineSeconds = (performance.now() - baselineStart) / 1000;

  // ---- operator ----
  await admin.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } });
  await admin.apply(
    { ...templateBody, metadata: { name: 'data-engineer', namespace: 'bench' } } as KubeObject,
    { fieldManager: 'bench' },
  );
  const operator = await new OperatorProcess(kubeconfig, {
    EPREUVE_LEADER_ELECT: 'false',
    EPREUVE_KUBE_QPS: String(QPS),
    EPREUVE_KUBE_BURST: String(BURST),
    EPREUVE_WORKERS: String(WORKERS),
    EPREUVE_LOG_LEVEL: 'warn',
  }).start();
  const created = new Map<string, number>();
  const done = new Map<string, number>();
  const abort = new AbortController();
  const ASMT = KINDS.Assessment;
  const watching = (async () => {
    while (!abort.signal.aborted) {
      await admin
        .watch<Assessment & KubeObject>(
          ASMT,
          { namespace: 'bench' },
          (e) => {
            const name = e.object.metadata?.name;
            const ok = e.object.status?.conditions?.some(
              (c) => c.type === 'Provisioned' && c.status === 'True',
            );
            if (name && ok && !done.has(name)) done.set(name, performance.now());
          },
          { signal: abort.signal, idleTimeoutMs: 60_000 },
        )
        .catch(() => {});
    }
  })();
  const start = performance.now();
  // Creation is not what is measured: a fast client creates the CRs as a burst of sign-ups would.
  await pool([...Array(N).keys()], 8, async (i) => {
    const name = `op-${i}`;
    created.set(name, performance.now());
    await admin.create(assessmentObject('bench', name) as KubeObject);
  });
  while (done.size < N) {
    if (performance.now() - start > 15 * 60_000)
      throw new Error(`only ${done.size}/${N} provisioned after 15 minutes`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const operatorSeconds = (Math.max(...done.values()) - start) / 1000;
  const fanout = [...done].map(([name, t]) => t - created.get(name)!);
  const requests = await operator.metric('rest_client_requests_total');

  // Paced arrivals, below capacity: the latency one candidate sees when the queue is not backed up.
  const PACED = Math.min(20, N);
  for (let i = 0; i < PACED; i++) {
    const name = `paced-${i}`;
    created.set(name, performance.now());
    await admin.create(assessmentObject('bench', name) as KubeObject);
    await new Promise((r) => setTimeout(r, 2000));
  }
  while ([...done.keys()].filter((k) => k.startsWith('paced-')).length < PACED) {
    if (operator.exited) throw new Error(`operator exited:\n${operator.output.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const paced = [...done].filter(([k]) => k.startsWith('paced-')).map(([name, t]) => t - created.get(name)!);
  abort.abort();
  await watching;
  await operator.stop();

  const baselineRate = N / baselineSeconds;
  const operatorRate = N / operatorSeconds;
  console.log(
    `\nprovisioning benchmark: ${N} assessments, ${QPS} qps / burst ${BURST}, ${WORKERS} workers, data-engineer template (15 objects + 3 secrets each)`,
  );
  console.log(
    `  raw client  : ${baselineRate.toFixed(2)} assessments/s  (bundle p50 ${ms(percentile(baselineLatencies, 50))}, p95 ${ms(percentile(baselineLatencies, 95))})`,
  );
  console.log(
    `  operator    : ${operatorRate.toFixed(2)} assessments/s  burst fan-out p50 ${ms(percentile(fanout, 50))}, p95 ${ms(percentile(fanout, 95))}  (${(requests / N).toFixed(1)} API requests per assessment, watches included)`,
  );
  console.log(
    `  one at a time: ${PACED} assessments every 2 s, fan-out p50 ${ms(percentile(paced, 50))}, p95 ${ms(percentile(paced, 95))} (goal p95 ≤ 2 s)`,
  );
  console.log(
    `  ratio       : operator throughput = ${ratio(operatorRate / baselineRate)} of the raw client (goal ≥ 80 %)`,
  );
} finally {
  await cp?.stop();
}
process.exit(0);
