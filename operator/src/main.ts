/**
 * The Épreuve operator: `node operator/src/main.ts`. Configuration comes from EPREUVE_* variables
 * (see config.ts); the Kubernetes connection from the pod's service account or $KUBECONFIG.
 */
import { hostname } from 'node:os';
import { KINDS } from '@epreuve/crds';
import {
  configOrExit,
  createLogger,
  KubeClient,
  LeaderElector,
  onShutdown,
  serveOps,
  startTelemetry,
} from '@epreuve/kube';
import { AssessmentReconciler } from './assessment/reconciler.ts';
import { loadConfig } from './config.ts';
import { Manager } from './manager.ts';
import { createMetrics } from './metrics.ts';
import { TemplateReconciler } from './template/reconciler.ts';

const config = configOrExit(loadConfig);
const telemetry = await startTelemetry('epreuve-operator');
const log = createLogger(config.EPREUVE_LOG_LEVEL);
const metrics = createMetrics();

const client = KubeClient.fromEnvironment({
  qps: config.EPREUVE_KUBE_QPS,
  burst: config.EPREUVE_KUBE_BURST,
  userAgent: 'epreuve-operator',
  kinds: Object.values(KINDS),
  onResponse: (method, resource, code, seconds) => {
    metrics.restRequests.inc({ method, resource, code: String(code) });
    metrics.restLatency.observe({ verb: method }, seconds);
  },
});
const manager = new Manager({ client, config, metrics, log });
AssessmentReconciler.setup(manager);
TemplateReconciler.setup(manager);
const identity = config.EPREUVE_POD_NAME ?? `${hostname()}-${process.pid}`;
const elector = config.EPREUVE_LEADER_ELECT
  ? new LeaderElector(client, {
      namespace: config.EPREUVE_LEADER_ELECTION_NAMESPACE,
      name: config.EPREUVE_LEADER_ELECTION_ID,
      identity,
      log,
      onLeadershipChange: (leading) =>
        metrics.leader.set({ name: config.EPREUVE_LEADER_ELECTION_ID }, leading ? 1 : 0),
    })
  : undefined;

let synced = false;
const ops = serveOps({
  port: config.EPREUVE_METRICS_PORT,
  metrics: metrics.registry,
  // A standby waiting for the lease is ready (to take over); a leader once its caches synced.
  ready: () => synced || (elector !== undefined && !elector.leading) || 'caches not synced',
  log: log.child({ identity }),
  what: 'operator',
});

const stop = new AbortController();
const shutdown = onShutdown(log, async () => {
  stop.abort();
  await manager.stop();
  await elector?.release();
  await telemetry?.shutdown();
  ops.close();
});

async function run() {
  if (elector && !(await elector.acquire(stop.signal))) return;
  await manager.start();
  synced = true;
  if (elector) {
    const outcome = await elector.hold(stop.signal);
    // Like controller-runtime: a replica that lost its lease exits, and restarts as a standby.
    if (outcome === 'lost') await shutdown(1, 'leader election lost');
  }
}

run().catch((err) => {
  log.fatal({ err }, 'operator failed');
  process.exit(1);
});
