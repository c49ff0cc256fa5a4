/**
 * The Épreuve operator: `node operator/src/main.ts`. Configuration comes from EPREUVE_* variables
 * (see config.ts); the Kubernetes connection from the pod's service account or $KUBECONFIG.
 */
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import { loadConfig } from './config.ts';
import { KubeClient } from './kube/client.ts';
import { LeaderElector } from './leader.ts';
import { createLogger } from './log.ts';
import { Manager } from './manager.ts';
import { createMetrics } from './metrics.ts';
import { startTelemetry } from './telemetry.ts';

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
const telemetry = await startTelemetry('epreuve-operator');
const log = createLogger(config.EPREUVE_LOG_LEVEL);
const metrics = createMetrics();

const kc = new KubeConfig();
kc.loadFromDefault();
const client = new KubeClient(kc, {
  qps: config.EPREUVE_KUBE_QPS,
  burst: config.EPREUVE_KUBE_BURST,
  userAgent: 'epreuve-operator',
  onResponse: (method, resource, code, seconds) => {
    metrics.restRequests.inc({ method, resource, code: String(code) });
    metrics.restLatency.observe({ verb: method }, seconds);
  },
});
const manager = new Manager({ client, config, metrics, log });
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
const server = createServer(async (req, res) => {
  if (req.url === '/metrics') {
    res.setHeader('content-type', metrics.registry.contentType);
    res.end(await metrics.registry.metrics());
  } else if (req.url === '/healthz') {
    res.end('ok');
  } else if (req.url === '/readyz') {
    // A standby waiting for the lease is ready (to take over); a leader once its caches synced.
    const ready = synced || (elector !== undefined && !elector.leading);
    res.statusCode = ready ? 200 : 503;
    res.end(ready ? 'ok' : 'caches not synced');
  } else {
    res.statusCode = 404;
    res.end();
  }
});
server.listen(config.EPREUVE_METRICS_PORT, () => {
  const address = server.address();
  log.info(
    { port: typeof address === 'object' ? address?.port : address, identity },
    'operator listening for /metrics, /healthz, /readyz',
  );
});

const stop = new AbortController();
let exiting = false;
async function shutdown(code: number, why: string) {
  if (exiting) return;
  exiting = true;
  log.info({ why }, 'shutting down: finishing reconciles in flight');
  stop.abort();
  await manager.stop();
  await elector?.release();
  await telemetry?.shutdown();
  server.close();
  process.exit(code);
}
process.on('SIGTERM', () => void shutdown(0, 'SIGTERM'));
process.on('SIGINT', () => void shutdown(0, 'SIGINT'));

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
