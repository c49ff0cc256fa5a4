/**
 * The Épreuve operator: `node operator/src/main.ts`. Configuration comes from EPREUVE_* variables
 * (see config.ts); the Kubernetes connection from the pod's service account or $KUBECONFIG.
 */
import { hostname } from 'node:os';
import { KINDS } from '@epreuve/crds';
import {
  configOrExit,
  createLogger,
  EventRecorder,
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
import { PoolReconciler } from './pool/reconciler.ts';
import { TemplateReconciler } from './template/reconciler.ts';
import { loadWebhookConfig } from './webhook/config.ts';
import { WebhookReconciler } from './webhook/controller.ts';

const config = configOrExit(loadConfig);
const webhookConfig = configOrExit(loadWebhookConfig);
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
  onRetry: (verb, _resource, code) => metrics.restRetries.inc({ verb, code: String(code) }),
});
const identity = config.EPREUVE_POD_NAME ?? `${hostname()}-${process.pid}`;
// Events get a client of their own too (as client-go's broadcaster): they never take the
// controllers' request budget, and the recorder's own token buckets keep them few.
const events = new EventRecorder(
  KubeClient.fromEnvironment({ qps: 5, burst: 10, userAgent: 'epreuve-operator/events' }),
  {
    reportingController: 'epreuve.dev/operator',
    reportingInstance: identity,
    log,
    onWrite: (result) => metrics.eventWrites.inc({ result }),
  },
);
const manager = new Manager({ client, config, metrics, log, events });
const seconds = (s: number) => s * 1000;
AssessmentReconciler.setup(manager);
TemplateReconciler.setup(manager);
PoolReconciler.setup(manager);
// Webhooks are sent by the leader only (docs/webhooks.md).
WebhookReconciler.setup(manager, webhookConfig);
// Leader election gets a client of its own, as in controller-runtime: renewals never wait behind
// the controllers' QPS budget (a burst of reconciles, a slow cache sync).
const electionClient = KubeClient.fromEnvironment({
  qps: 5,
  burst: 10,
  userAgent: 'epreuve-operator/leader-election',
});
const elector = config.EPREUVE_LEADER_ELECT
  ? new LeaderElector(electionClient, {
      namespace: config.EPREUVE_LEADER_ELECTION_NAMESPACE,
      name: config.EPREUVE_LEADER_ELECTION_ID,
      identity,
      leaseDurationMs: seconds(config.EPREUVE_LEADER_ELECTION_LEASE_DURATION_SECONDS),
      renewDeadlineMs: seconds(config.EPREUVE_LEADER_ELECTION_RENEW_DEADLINE_SECONDS),
      retryPeriodMs: seconds(config.EPREUVE_LEADER_ELECTION_RETRY_PERIOD_SECONDS),
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
onShutdown(log, async () => {
  // A standby stops campaigning at once; a leader keeps renewing while its reconciles in flight
  // finish (as controller-runtime does), then releases the lease so a standby takes over at once.
  if (!elector?.leading) stop.abort();
  await manager.stop();
  stop.abort();
  await events.flush();
  await elector?.release();
  await telemetry?.shutdown();
  ops.close();
});

async function run() {
  if (!elector) {
    synced = await manager.start();
    return;
  }
  // The lease is renewed from the moment it is held, while the caches sync; if it is lost during
  // the sync, no worker starts.
  const outcome = await elector.run(stop.signal, async (leading) => {
    synced = await manager.start(leading);
  });
  if (outcome === 'lost') {
    // Like controller-runtime (graceful shutdown timeout 0 on a lost election): stop the workers
    // now, without finishing reconciles in flight — another replica may already lead — and exit,
    // to restart as a standby.
    manager.halt();
    log.error('leader election lost: workers stopped; exiting');
    process.exit(1);
  }
}

run().catch((err) => {
  log.fatal({ err }, 'operator failed');
  process.exit(1);
});
