/**
 * The Épreuve API: `node api/src/main.ts`. Configuration from EPREUVE_* variables (config.ts);
 * the Kubernetes connection from the pod's service account or $KUBECONFIG.
 */
import { readFileSync } from 'node:fs';
import { API_VERSION } from '@epreuve/crds';
import { Informer, KubeClient, resourceFor } from '@epreuve/operator/kube';
import { startTelemetry } from '@epreuve/operator/telemetry';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { buildApp } from './app.ts';
import { loadApiConfig } from './config.ts';
import { type A, AssessmentStore, type T } from './services/assessments.ts';
import { LinkSigner } from './services/links.ts';

let config: ReturnType<typeof loadApiConfig>;
try {
  config = loadApiConfig();
} catch (err) {
  console.error((err as Error).message);
  process.exit(2);
}
const telemetry = await startTelemetry('epreuve-api');
const log = pino({
  level: config.EPREUVE_LOG_LEVEL,
  name: 'epreuve-api',
  redact: ['req.headers.authorization', 'req.headers.cookie'],
});

const kc = new KubeConfig();
kc.loadFromDefault();
const client = new KubeClient(kc, { qps: 50, burst: 100, userAgent: 'epreuve-api' });
const abort = new AbortController();
const assessments = new Informer<A>(client, { type: resourceFor(API_VERSION, 'Assessment'), log });
const templates = new Informer<T>(client, { type: resourceFor(API_VERSION, 'AssessmentTemplate'), log });
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
  store: new AssessmentStore(client, assessments, templates),
  links,
  logger: log,
});
await app.listen({ host: config.EPREUVE_API_HOST, port: config.EPREUVE_API_PORT });

let closing = false;
async function shutdown(signal: string) {
  if (closing) return;
  closing = true;
  log.info({ signal }, 'shutting down: finishing requests in flight');
  await app.close();
  abort.abort();
  await telemetry?.shutdown();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
