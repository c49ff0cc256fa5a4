/**
 * The data API process (the data-api image's entrypoint): reads the environment, serves the
 * dataset, and shuts down gracefully on SIGTERM/SIGINT. Exit codes: 0 after a clean shutdown,
 * 1 on a runtime failure, 2 on bad configuration (the variable is named on stderr).
 */
import { DATA_API_VARIANT } from '@epreuve/crds';
import { resolveDataset } from '../datasets/catalog.ts';
import { PREBUILT_DIR_ENV, readPrebuilt } from '../datasets/prebuilt.ts';
import { ApiKey } from './api-key.ts';
import { buildApp } from './app.ts';
import { configFromEnv } from './config.ts';

const parsed = configFromEnv(process.env);
if (!parsed.ok) {
  console.error(`data-api: invalid configuration: ${parsed.reason}`);
  process.exit(2);
}
const { port, host, logLevel, adminPort, apiKeyFile, ...config } = parsed.value;
let warn: (message: string) => void = () => {};
const apiKey = new ApiKey(config.apiKey, {
  file: apiKeyFile,
  onError: (message) => warn(`${message}; the key in force stays`),
});

// The served tables from the image's prebuilt file (datasets/prebuilt.ts) when it holds them: a
// parse instead of generating under the pod's 250m, on the way to Ready. buildApp generates them
// otherwise. Why a file was refused is logged once the logger exists.
const refused: string[] = [];
const tablesStarted = Date.now();
const prebuiltDir = process.env[PREBUILT_DIR_ENV];
const data = prebuiltDir
  ? readPrebuilt(prebuiltDir, resolveDataset(config.dataset), config.size, DATA_API_VARIANT, (l) =>
      refused.push(l),
    )
  : undefined;

const app = buildApp(config, {
  logger: {
    level: logLevel,
    // Belt and braces: nothing logs headers today, but a key must never reach a log line.
    redact: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers["x-admin-key"]'],
  },
  separateAdmin: adminPort !== undefined,
  apiKey,
  data,
});
const preparedMs = Date.now() - tablesStarted;
warn = (message) => app.log.warn(message);
for (const line of refused) warn(line);

let closing = false;
function shutdown(signal: string) {
  if (closing) return;
  closing = true;
  app.log.info({ signal }, 'shutting down: finishing in-flight requests');
  // In-flight requests last at most the slow-fault delay; do not hang past the pod's grace period.
  setTimeout(() => {
    app.log.error('shutdown timed out');
    process.exit(1);
  }, 10_000).unref();
  app.close().then(
    () => {
      app.log.info('stopped');
      process.exit(0);
    },
    (err: unknown) => {
      app.log.error({ err }, 'shutdown failed');
      process.exit(1);
    },
  );
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

try {
  await app.listen({ port, host });
  if (adminPort !== undefined) await app.adminServer.listen({ port: adminPort, host });
  app.log.info(
    {
      dataset: config.dataset,
      size: config.size,
      tables: data ? 'prebuilt' : 'generated',
      preparedMs,
      pageSize: config.pageSize,
      rateLimitPerMinute: config.rateLimitPerMinute,
      faultRate: config.faultRate,
      admin: config.adminKey !== undefined,
      adminPort: adminPort ?? 'same as port',
    },
    'data API ready',
  );
} catch (err) {
  app.log.error({ err }, 'could not start');
  process.exit(1);
}
