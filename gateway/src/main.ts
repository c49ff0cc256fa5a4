/**
 * The sandbox gateway: `node gateway/src/main.ts`. Candidates reach their sandboxes through it
 * from their own machines (see server.ts). Routes come from an informer over Assessments; the
 * Kubernetes connection from the pod's service account or $KUBECONFIG.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { KINDS } from '@epreuve/crds';
import {
  configOrExit,
  createLogger,
  Informer,
  KubeClient,
  onShutdown,
  serveOps,
  startTelemetry,
} from '@epreuve/kube';
import { Counter, collectDefaultMetrics, Registry } from 'prom-client';
import { loadGatewayConfig } from './config.ts';
import { type AssessmentObject, hostLabels, resolveLabel } from './routes.ts';
import { SandboxGateway } from './server.ts';
import { kubeSignalsWriter, SignalsRecorder } from './signals.ts';

const config = configOrExit(loadGatewayConfig);
const telemetry = await startTelemetry('epreuve-gateway');
const log = createLogger(config.EPREUVE_LOG_LEVEL, 'epreuve-gateway');
const client = KubeClient.fromEnvironment({
  qps: 5,
  burst: 10,
  userAgent: 'epreuve-gateway',
  kinds: Object.values(KINDS),
});
const abort = new AbortController();
const assessments = new Informer<AssessmentObject>(client, { type: KINDS.Assessment, log }).addIndex(
  'hostLabel',
  hostLabels,
);
void assessments.run(abort.signal);

const registry = new Registry();
// Integrity signals for reviewers, written to each Assessment's status, debounced (signals.ts).
const signalWrites = new Counter({
  name: 'epreuve_gateway_signals_writes_total',
  help: "Integrity signal writes to Assessments' status: written, gone (deleted assessment), error",
  labelNames: ['result'] as const,
  registers: [registry],
});
const writeSignals = kubeSignalsWriter(client);
const signals = new SignalsRecorder({
  write: async (assessment, uid, delta) => {
    const written = await writeSignals(assessment, uid, delta);
    signalWrites.inc({ result: written ? 'written' : 'gone' });
    return written;
  },
  intervalMs: config.EPREUVE_GATEWAY_SIGNALS_INTERVAL_MS,
  onError: (assessment, err) => {
    signalWrites.inc({ result: 'error' });
    log.warn({ assessment, err: (err as Error).message }, 'integrity signals not written; retrying');
  },
});

collectDefaultMetrics({ register: registry });
const gateway = new SandboxGateway({
  domain: config.EPREUVE_GATEWAY_DOMAIN,
  tls: createSecureContext({
    cert: readFileSync(config.EPREUVE_GATEWAY_TLS_CERT_FILE),
    key: readFileSync(config.EPREUVE_GATEWAY_TLS_KEY_FILE),
  }),
  resolve: (label) => resolveLabel(label, assessments.byIndex('hostLabel', label)),
  maxConnections: config.EPREUVE_GATEWAY_MAX_CONNECTIONS,
  maxConnectionsPerClient: config.EPREUVE_GATEWAY_MAX_CONNECTIONS_PER_CLIENT,
  maxConnectionsPerSandbox: config.EPREUVE_GATEWAY_MAX_CONNECTIONS_PER_SANDBOX,
  maxPendingPerSandbox: config.EPREUVE_GATEWAY_MAX_PENDING_PER_SANDBOX,
  maxPendingTotalPerSandbox: config.EPREUVE_GATEWAY_MAX_PENDING_TOTAL_PER_SANDBOX,
  idleTimeoutMs: config.EPREUVE_GATEWAY_IDLE_TIMEOUT_SECONDS * 1000,
  unauthenticatedIdleMs: config.EPREUVE_GATEWAY_UNAUTHENTICATED_IDLE_SECONDS * 1000,
  handshakeTimeoutMs: config.EPREUVE_GATEWAY_HANDSHAKE_TIMEOUT_SECONDS * 1000,
  recheckMs: config.EPREUVE_GATEWAY_RECHECK_MS,
  maxCancelMissesPerMinute: config.EPREUVE_GATEWAY_MAX_CANCEL_MISSES_PER_MINUTE,
  maxCancelsPerMinute: config.EPREUVE_GATEWAY_MAX_CANCELS_PER_MINUTE,
  log,
  registry,
  signals,
});

// Health and metrics on their own port, never on the candidates' one.
const ops = serveOps({
  port: config.EPREUVE_METRICS_PORT,
  host: config.EPREUVE_GATEWAY_HOST,
  metrics: registry,
  ready: () => assessments.hasSynced() || 'waiting for the assessment cache',
  log,
  what: 'gateway operations',
});
// Before waiting for the cache: a gateway that cannot reach Kubernetes still stops on SIGTERM
// (as PID 1 in its container, a signal nobody handles is ignored until the kubelet kills it).
onShutdown(log, async () => {
  abort.abort();
  await gateway.close();
  // What the last connections showed, written before the process goes.
  await signals.close();
  ops.close();
  await telemetry?.shutdown();
});

await assessments.waitForSync();
const port = await gateway.listen(config.EPREUVE_GATEWAY_PORT, config.EPREUVE_GATEWAY_HOST);
log.info(
  { port, domain: config.EPREUVE_GATEWAY_DOMAIN, metricsPort: config.EPREUVE_METRICS_PORT },
  'sandbox gateway listening',
);
