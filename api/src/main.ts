/**
 * The Épreuve API: `node api/src/main.ts`. Configuration from EPREUVE_* variables (config.ts);
 * the Kubernetes connection from the pod's service account or $KUBECONFIG.
 */
import { readFileSync } from 'node:fs';
import { KINDS } from '@epreuve/crds';
import { configOrExit, Informer, KubeClient, onShutdown, serveOps, startTelemetry } from '@epreuve/kube';
import pino from 'pino';
import { buildApp } from './app.ts';
import { loadApiConfig } from './config.ts';
import { createApiLogger } from './logger.ts';
import { type AssessmentObject, AssessmentStore, type TemplateObject } from './services/assessments.ts';
import { LinkSigner } from './services/links.ts';

const config = configOrExit(loadApiConfig);
const telemetry = await startTelemetry('epreuve-api');
const log = createApiLogger(
  config.EPREUVE_LOG_LEVEL,
  // Asynchronous writes of 4 kB or more: lines wait in memory until that much is pending or for
  // at most 200 ms (sonic-boom's periodicFlush), so a busy API writes a dozen lines a write(2)
  // (one write per request was 4 % of the session endpoint's CPU, one per in-flight write still
  // 5 % with the thread-pool round trip); pino flushes what is pending when the process exits.
  pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 200 }),
);

const client = KubeClient.fromEnvironment({
  qps: 50,
  burst: 100,
  userAgent: 'epreuve-api',
  kinds: Object.values(KINDS),
});
const abort = new AbortController();
const assessments = new Informer<AssessmentObject>(client, { type: KINDS.Assessment, log });
const templates = new Informer<TemplateObject>(client, { type: KINDS.AssessmentTemplate, log });
for (const inf of [assessments, templates]) void inf.run(abort.signal);

let links: LinkSigner;
if (config.EPREUVE_LINK_KEY_FILE)
  links = await LinkSigner.fromPem(readFileSync(config.EPREUVE_LINK_KEY_FILE, 'utf8'));
else {
  log.warn(
    'EPREUVE_LINK_KEY_FILE is not set: candidate links are signed with a key that dies with this process',
  );
  links = await LinkSigner.ephemeral();
}

const app = await buildApp({
  config,
  client,
  store: new AssessmentStore(client, assessments, templates, {
    perTeam: config.EPREUVE_TEAM_BUDGETS,
    default: config.EPREUVE_MAX_ACTIVE_ASSESSMENTS_PER_TEAM,
  }),
  links,
  logger: log,
});
// Metrics on their own port, never on the internet-facing one (which answers /metrics with a 404).
const ops = serveOps({
  port: config.EPREUVE_METRICS_PORT,
  host: config.EPREUVE_API_HOST,
  metrics: app.metricsRegistry,
  ready: () => app.assessments.synced() || 'caches not synced',
  log,
  what: 'API metrics',
});
await app.listen({ host: config.EPREUVE_API_HOST, port: config.EPREUVE_API_PORT });

onShutdown(log, async () => {
  ops.close();
  await app.close();
  abort.abort();
  await telemetry?.shutdown();
});
