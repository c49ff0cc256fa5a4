/**
 * The sandbox gateway: `node api/src/gateway/main.ts`. Candidates reach their sandboxes through it
 * from their own machines (see server.ts). Routes come from an informer over Assessments; the
 * Kubernetes connection from the pod's service account or $KUBECONFIG.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createSecureContext } from 'node:tls';
import { API_VERSION } from '@epreuve/crds';
import { Informer, KubeClient, resourceFor } from '@epreuve/operator/kube';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { A } from '../services/assessments.ts';
import { type GatewayConfig, loadGatewayConfig } from './config.ts';
import { hostLabels, resolveLabel } from './routes.ts';
import { SandboxGateway } from './server.ts';

let config: GatewayConfig;
try {
  config = loadGatewayConfig();
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
const log = pino({ level: config.EPREUVE_LOG_LEVEL, name: 'epreuve-gateway' });
const kc = new KubeConfig();
kc.loadFromDefault();
const client = new KubeClient(kc, { qps: 5, burst: 10, userAgent: 'epreuve-gateway' });
const abort = new AbortController();
const assessments = new Informer<A>(client, { type: resourceFor(API_VERSION, 'Assessment'), log }).addIndex(
  'hostLabel',
  hostLabels,
);
void assessments.run(abort.signal);

const registry = new Registry();
collectDefaultMetrics({ register: registry });
const gateway = new SandboxGateway({
  domain: config.EPREUVE_GATEWAY_DOMAIN,
  tls: createSecureContext({
    cert: readFileSync(config.EPREUVE_GATEWAY_TLS_CERT_FILE),
    key: readFileSync(config.EPREUVE_GATEWAY_TLS_KEY_FILE),
  }),
  resolve: (label) => resolveLabel(label, assessments.byIndex('hostLabel', label)),
  maxConnectionsPerSandbox: config.EPREUVE_GATEWAY_MAX_CONNECTIONS_PER_SANDBOX,
  idleTimeoutMs: config.EPREUVE_GATEWAY_IDLE_TIMEOUT_SECONDS * 1000,
  handshakeTimeoutMs: config.EPREUVE_GATEWAY_HANDSHAKE_TIMEOUT_SECONDS * 1000,
  log,
  registry,
});

// Health and metrics on their own port, never on the candidates' one.
const ops = createServer(async (req, res) => {
  if (req.url === '/metrics') {
    res.setHeader('content-type', registry.contentType);
    return res.end(await registry.metrics());
  }
  if (req.url === '/healthz') return res.end('ok');
  if (req.url === '/readyz') {
    res.statusCode = assessments.hasSynced() ? 200 : 503;
    return res.end(assessments.hasSynced() ? 'ok' : 'waiting for the assessment cache');
  }
  res.statusCode = 404;
  res.end();
});
ops.listen(config.EPREUVE_METRICS_PORT, config.EPREUVE_GATEWAY_HOST);
await assessments.waitForSync();
const port = await gateway.listen(config.EPREUVE_GATEWAY_PORT, config.EPREUVE_GATEWAY_HOST);
log.info(
  { port, domain: config.EPREUVE_GATEWAY_DOMAIN, metricsPort: config.EPREUVE_METRICS_PORT },
  'sandbox gateway listening',
);

async function shutdown(signal: string) {
  log.info({ signal }, 'shutting down');
  abort.abort();
  await gateway.close();
  ops.close();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
