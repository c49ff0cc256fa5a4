/**
 * Provisioning benchmark on the integration control plane (make bench):
 *   baseline — a raw client server-side applies each assessment's object bundle (the same pure
 *              desired-state functions, the same secrets), 4 bundles at a time, at the operator's
 *              QPS budget (20 qps, burst 30);
 *   operator — N Assessment CRs are created; fan-out is CR created → Provisioned=True (every
 *              object applied), seen through a watch.
 * At the same QPS budget the throughput ratio is mostly requests-per-assessment arithmetic, so the
 * figures that measure the operator itself come first:
 *   - API requests per assessment (from the operator's rest_client_requests_total, watches
 *     included) against the minimum: one write per object of the bundle (goal ≤ 1.1×);
 *   - operator CPU-milliseconds per assessment (/proc/<pid>/stat, user + system);
 *   - operator RSS with BENCH_CACHED (default 1 000) assessments and their objects in its caches,
 *     after a restart that lists them all (goal ≤ 150 MB). The operator runs as the chart runs it:
 *     with the NODE_OPTIONS (heap bound) of its Deployment in manifests/base (the chart rendered
 *     with its defaults), and its RSS is printed against that Deployment's memory limit too.
 *     It runs the image's entry point too: operator/src/main.ts bundled by hack/images/bundle.ts
 *     (cached under ~/.cache/epreuve/operator-bundle/<hash of its sources>/), not the .ts
 *     sources, which load node's type stripper (~17 MB more). BENCH_OPERATOR=ts runs the sources;
 *     BENCH_NODE_OPTIONS replaces the chart's NODE_OPTIONS (to measure other heap bounds). Node's
 *     own flags on the image's command line (the Dockerfile's operator ENTRYPOINT: flags NODE_OPTIONS
 *     refuses, such as --optimize-for-size) are read from the Dockerfile and passed the same way;
 *     BENCH_NODE_FLAGS replaces them (space-separated; empty for none).
 * Then p50/p95 fan-out, throughput, and operator/baseline as a ratio. BENCH_N (default 200).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KINDS } from '@epreuve/crds';
import { KubeClient, type KubeObject } from '@epreuve/kube';
import { KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import {
  type Assessment,
  type AssessmentTemplate,
  assessmentSpec,
  assessmentTemplateSpec,
  FIELD_MANAGER,
} from '../../crds/src/index.ts';
import { ControlPlane } from '../../hack/cluster/control-plane.ts';
import { readDockerfile } from '../../hack/images/dockerfile.ts';
import { desiredState, namespaceContents } from '../../operator/src/assessment/desired.ts';
import { loadConfig } from '../../operator/src/config.ts';
import { assessmentObject, sample } from '../harness/fixtures.ts';
import { installCrds, kube } from '../harness/kube.ts';
import { OperatorProcess } from '../harness/operator.ts';
import { ms, percentile, pool, ratio } from './stats.ts';

const N = Number(process.env.BENCH_N ?? 200);
const CACHED = Number(process.env.BENCH_CACHED ?? 1000);
const GOAL_REQUESTS = 1.1;
const GOAL_RSS_MB = 150;
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

/** CPU time (user + system) of a process so far, in milliseconds. */
function cpuMs(pid: number): number {
  // Fields after the command (which may hold spaces) start at the 3rd: utime is the 14th, stime the 15th.
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

/** Resident set size of a process, in MB. */
function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

/** The anonymous part of a process's RSS (heaps, not the mapped binary and libraries), in MB. */
function anonMb(pid: number): number {
  const kb = /RssAnon:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}
/** The operator container of the chart's Deployment (default values): its env and memory limit. */
function chartOperator(): { nodeOptions: string; limitMb: number } {
  const file = join(import.meta.dirname, '..', '..', 'manifests', 'base', 'epreuve.yaml');
  const deployment = parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS())
    .find((o) => o?.kind === 'Deployment' && o.metadata?.name === 'epreuve-operator');
  const container = deployment?.spec?.template?.spec?.containers?.find(
    (c: { name: string }) => c.name === 'operator',
  );
  if (!container) throw new Error(`${file}: no epreuve-operator Deployment with an operator container`);
  const nodeOptions = container.env?.find((e: { name: string }) => e.name === 'NODE_OPTIONS')?.value;
  const limit = /^(\d+)Mi$/.exec(container.resources?.limits?.memory ?? '');
  if (nodeOptions === undefined || !limit)
    throw new Error(`${file}: the operator container has no NODE_OPTIONS or no memory limit in Mi`);
  // MB here are MiB, as the RSS figures (kB / 1024).
  // BENCH_NODE_OPTIONS: other heap bounds, to measure one before the chart takes it.
  return { nodeOptions: process.env.BENCH_NODE_OPTIONS ?? nodeOptions, limitMb: Number(limit[1]) };
}
const CHART = chartOperator();

/**
 * Node's flags on the operator image's command line, before its bundle (the Dockerfile's operator
 * ENTRYPOINT, `node <flags…> operator/main.mjs`): V8 flags NODE_OPTIONS refuses go there.
 */
function imageNodeFlags(): string[] {
  if (process.env.BENCH_NODE_FLAGS !== undefined)
    return process.env.BENCH_NODE_FLAGS.split(/\s+/).filter(Boolean);
  const entrypoint = readDockerfile(join(import.meta.dirname, '..', '..')).find(
    (s) => s.name === 'operator',
  )?.entrypoint;
  if (entrypoint?.[0] !== 'node')
    throw new Error('Dockerfile: the operator stage has no `node …` ENTRYPOINT');
  const bundle = entrypoint.findIndex((a, i) => i > 0 && !a.startsWith('-'));
  return entrypoint.slice(1, bundle);
}
const NODE_FLAGS = imageNodeFlags();

const ROOT = join(import.meta.dirname, '..', '..');
/**
 * The operator's entry point as its image runs it: operator/src/main.ts bundled to one ESM file
 * (hack/images/bundle.ts, as the Dockerfile's build stage does), built once per content of what
 * goes into it (the operator's, kube's and crds' sources, the bundler, the lockfile). npm
 * dependencies stay external: the bundle's directory links to the repository's node_modules.
 */
function operatorMain(): string {
  if (process.env.BENCH_OPERATOR === 'ts') return join(ROOT, 'operator', 'src', 'main.ts');
  if (process.env.BENCH_OPERATOR !== undefined && process.env.BENCH_OPERATOR !== 'bundle')
    throw new Error(`BENCH_OPERATOR="${process.env.BENCH_OPERATOR}": expected "bundle" (default) or "ts"`);
  const hash = createHash('sha256');
  const files = ['package-lock.json', 'hack/images/bundle.ts'];
  for (const ws of ['operator', 'kube', 'crds']) {
    files.push(`${ws}/package.json`);
    for (const f of readdirSync(join(ROOT, ws, 'src'), { recursive: true, encoding: 'utf8' }).sort())
      if (f.endsWith('.ts') && !f.endsWith('.test.ts')) files.push(`${ws}/src/${f}`);
  }
  for (const f of files)
    hash
      .update(f)
      .update('\0')
      .update(readFileSync(join(ROOT, f)))
      .update('\0');
  const dir = join(homedir(), '.cache', 'epreuve', 'operator-bundle', hash.digest('hex').slice(0, 16));
  const main = join(dir, 'operator', 'main.mjs');
  if (existsSync(main)) return main;
  // Built aside and renamed into place, so an interrupted build is never taken for a cached one.
  const tmp = `${dir}.${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  execFileSync(process.execPath, [join(ROOT, 'hack', 'images', 'bundle.ts'), tmp, 'operator/src/main.ts'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  symlinkSync(join(ROOT, 'node_modules'), join(tmp, 'node_modules'));
  renameSync(tmp, dir);
  return main;
}
const MAIN = operatorMain();
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
  /** The minimum: one write per object (namespace, Secrets, everything in the namespace). */
  let bundle = 0;
  const baselineStart = performance.now();
  await pool([...Array(N).keys()], WORKERS, async (i) => {
    const a: Assessment = {
      ...(assessmentObject('bench-raw', `raw-${i}`) as unknown as Assessment),
      spec: assessmentSpec.parse(assessmentObject('bench-raw', `raw-${i}`).spec),
    };
    const state = desiredState({ assessment: a, template, config });
    const rest = namespaceContents(state);
    bundle = 1 + state.secrets.length + rest.length;
    const t0 = performance.now();
    await raw.apply(state.namespace, { fieldManager: FIELD_MANAGER });
    for (const secret of state.secrets) await raw.create(secret);
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
  const operator = await new OperatorProcess(
    kubeconfig,
    {
      NODE_OPTIONS: CHART.nodeOptions,
      EPREUVE_LEADER_ELECT: 'false',
      EPREUVE_KUBE_QPS: String(QPS),
      EPREUVE_KUBE_BURST: String(BURST),
      EPREUVE_WORKERS: String(WORKERS),
      EPREUVE_LOG_LEVEL: 'warn',
    },
    MAIN,
    NODE_FLAGS,
  ).start();
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
  // Its footprint with nothing to manage yet: what the process costs before any cache grows.
  await new Promise((r) => setTimeout(r, 5000));
  const idleRss = rssMb(operator.pid!);
  const requestsBefore = await operator.metric('rest_client_requests_total');
  const cpuBefore = cpuMs(operator.pid!);
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
  const cpuPerAssessment = (cpuMs(operator.pid!) - cpuBefore) / N;
  const requests = (await operator.metric('rest_client_requests_total')) - requestsBefore;
  const writes =
    (await operator.metric('rest_client_requests_total', { method: 'PATCH' })) +
    (await operator.metric('rest_client_requests_total', { method: 'POST' })) +
    (await operator.metric('rest_client_requests_total', { method: 'PUT' }));

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
  await operator.stop();

  // ---- RSS with CACHED assessments cached: the rest created, then a restart that lists them all ----
  const existing = N + PACED;
  await pool([...Array(Math.max(0, CACHED - existing)).keys()], 8, async (i) => {
    await admin.create(assessmentObject('bench', `cached-${i}`) as KubeObject);
  });
  const restarted = await new OperatorProcess(
    kubeconfig,
    {
      NODE_OPTIONS: CHART.nodeOptions,
      EPREUVE_LEADER_ELECT: 'false',
      // A larger budget, only so the fill finishes in minutes; RSS does not depend on it.
      EPREUVE_KUBE_QPS: '200',
      EPREUVE_KUBE_BURST: '400',
      EPREUVE_WORKERS: String(WORKERS),
      EPREUVE_LOG_LEVEL: 'warn',
    },
    MAIN,
    NODE_FLAGS,
  ).start();
  const fillStart = performance.now();
  while (done.size < Math.max(CACHED, existing)) {
    if (restarted.exited) throw new Error(`operator exited:\n${restarted.output.slice(-2000)}`);
    if (performance.now() - fillStart > 30 * 60_000)
      throw new Error(`only ${done.size}/${CACHED} provisioned after 30 minutes`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const fillSeconds = (performance.now() - fillStart) / 1000;
  // Settled: the queue drained, a collection or two behind it.
  await new Promise((r) => setTimeout(r, 10_000));
  const rss = rssMb(restarted.pid!);
  const anon = anonMb(restarted.pid!);
  abort.abort();
  await watching;
  await restarted.stop();

  const perAssessment = requests / N;
  const verdict = (ok: boolean, by: string) => (ok ? 'met' : `MISSED by ${by}`);
  const baselineRate = N / baselineSeconds;
  const operatorRate = N / operatorSeconds;
  console.log(
    `\nprovisioning benchmark: ${N} assessments, ${QPS} qps / burst ${BURST}, ${WORKERS} workers, data-engineer template (${bundle} objects each, Secrets included)`,
  );
  console.log(
    `  requests    : ${perAssessment.toFixed(1)} API requests per assessment (${(writes / (N + PACED)).toFixed(1)} writes; watches and reads included) = ${(perAssessment / bundle).toFixed(2)}× the minimum of ${bundle} (one write per object) — goal ≤ ${GOAL_REQUESTS}×: ${verdict(perAssessment / bundle <= GOAL_REQUESTS, `${(perAssessment / bundle - GOAL_REQUESTS).toFixed(2)}×`)}`,
  );
  console.log(
    `  operator CPU: ${cpuPerAssessment.toFixed(1)} ms per assessment (user + system, the burst of ${N})`,
  );
  console.log(
    `  operator RSS: ${rss.toFixed(0)} MB with ${Math.max(CACHED, existing)} assessments and their objects cached (${Math.max(CACHED, existing) * bundle} managed objects), after a restart that relisted and converged them in ${fillSeconds.toFixed(0)} s (${anon.toFixed(0)} MB of it anonymous; ${idleRss.toFixed(0)} MB idle, before its first assessment) — goal ≤ ${GOAL_RSS_MB} MB: ${verdict(rss <= GOAL_RSS_MB, `${(rss - GOAL_RSS_MB).toFixed(0)} MB`)}`,
  );
  console.log(
    `                run as the chart runs it: ${MAIN.endsWith('.mjs') ? "the image's bundle" : 'the .ts sources (BENCH_OPERATOR=ts)'}, node ${NODE_FLAGS.join(' ') || '(no flags)'} (${process.env.BENCH_NODE_FLAGS === undefined ? 'Dockerfile' : 'BENCH_NODE_FLAGS'}), NODE_OPTIONS="${CHART.nodeOptions}" (${process.env.BENCH_NODE_OPTIONS === undefined ? 'manifests/base' : 'BENCH_NODE_OPTIONS'}), ${ratio(rss / CHART.limitMb)} of its ${CHART.limitMb} Mi memory limit (not enforced here: no cgroup)`,
  );
  console.log(
    `  raw client  : ${baselineRate.toFixed(2)} assessments/s  (bundle p50 ${ms(percentile(baselineLatencies, 50))}, p95 ${ms(percentile(baselineLatencies, 95))})`,
  );
  console.log(
    `  operator    : ${operatorRate.toFixed(2)} assessments/s  burst fan-out p50 ${ms(percentile(fanout, 50))}, p95 ${ms(percentile(fanout, 95))}`,
  );
  console.log(
    `  one at a time: ${PACED} assessments every 2 s, fan-out p50 ${ms(percentile(paced, 50))}, p95 ${ms(percentile(paced, 95))} (goal p95 ≤ 2 s)`,
  );
  console.log(
    `  ratio       : operator throughput = ${ratio(operatorRate / baselineRate)} of the raw client at the same QPS budget (goal ≥ 90 %; bound by requests per assessment)`,
  );
} finally {
  await cp?.stop();
}
process.exit(0);
