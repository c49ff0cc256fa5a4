/**
 * Hello-world fastify under the API's production logging and tracing, for the session benchmark
 * (api-session.ts): `node test/bench/hello-server.ts <port>`, configured by the same environment
 * as the API (OTEL_*; logging at info to stdout). It is the API's own observability, not a copy:
 * the logger main.ts builds (the same asynchronous stdout destination), the tracing main.ts starts,
 * and the plugin that writes one line, one span and the RED metrics per request. What it does not
 * have is the API itself (auth, rate limit, load shedding, headers, routing of many routes, the
 * handler and its serializer): the ratio of the two is the API's own cost under production
 * conditions.
 */
import { startTelemetry } from '@epreuve/kube';
import Fastify, { LogController } from 'fastify';
import pino from 'pino';
import { createApiLogger } from '../../api/src/logger.ts';
import observabilityPlugin from '../../api/src/plugins/app/observability.ts';

const telemetry = await startTelemetry('hello-world');
const log = createApiLogger(
  process.env.EPREUVE_LOG_LEVEL ?? 'info',
  // main.ts's destination, as it is there.
  pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 200 }),
);
// One line per request, the observability plugin's, as app.ts configures it.
const app = Fastify({
  loggerInstance: log,
  logController: new LogController({ disableRequestLogging: true }),
});
await app.register(observabilityPlugin, {});
app.get('/', async () => ({ hello: 'world' }));
await app.listen({ host: '127.0.0.1', port: Number(process.argv[2]) });
process.once('SIGTERM', async () => {
  await app.close();
  await telemetry?.shutdown();
  process.exit(0);
});
