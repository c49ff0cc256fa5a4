import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';

/**
 * What every Épreuve entry point does the same way: read its configuration or exit 2 with the
 * reason, serve `/healthz` `/readyz` `/metrics` on an operations port (never the public one), and
 * shut down once on SIGTERM / SIGINT.
 */

/** Loads configuration; a bad value prints the error (naming the variable) and exits 2. */
export function configOrExit<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(2);
  }
}

/** A Prometheus registry as prom-client exposes it. */
export interface MetricsSource {
  contentType: string;
  metrics(): Promise<string>;
}

export interface OpsServerOptions {
  port: number;
  host?: string;
  metrics?: MetricsSource;
  /** `true` when ready, else the reason it is not (answered with a 503). */
  ready: () => true | string;
  log: Logger;
  /** Logged with the port once listening. */
  what: string;
}

/** `/healthz` (alive), `/readyz` (ready or 503 with the reason) and `/metrics`. */
export function serveOps(opts: OpsServerOptions): Server {
  const server = createServer(async (req, res) => {
    const path = req.url?.split('?')[0];
    if (path === '/metrics' && opts.metrics) {
      res.setHeader('content-type', opts.metrics.contentType);
      res.end(await opts.metrics.metrics());
    } else if (path === '/healthz') {
      res.end('ok');
    } else if (path === '/readyz') {
      const ready = opts.ready();
      res.statusCode = ready === true ? 200 : 503;
      res.end(ready === true ? 'ok' : ready);
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  server.on('error', (err) => {
    opts.log.fatal({ err, port: opts.port }, 'operations server failed');
    process.exit(1);
  });
  server.listen(opts.port, opts.host, () => {
    const address = server.address();
    opts.log.info(
      { port: typeof address === 'object' ? address?.port : address },
      `${opts.what} listening for /metrics, /healthz, /readyz`,
    );
  });
  return server;
}

/**
 * Runs `stop` once, on the first SIGTERM or SIGINT or on an explicit call, then exits with its
 * code. Returns the trigger, for exits the process decides itself (a lost lease).
 */
export function onShutdown(
  log: Logger,
  stop: (why: string) => Promise<void>,
): (code: number, why: string) => Promise<void> {
  let exiting = false;
  const shutdown = async (code: number, why: string) => {
    if (exiting) return;
    exiting = true;
    log.info({ why }, 'shutting down: finishing work in flight');
    try {
      await stop(why);
    } catch (err) {
      log.error({ err }, 'shutdown did not finish cleanly');
      code ||= 1;
    }
    process.exit(code);
  };
  process.on('SIGTERM', () => void shutdown(0, 'SIGTERM'));
  process.on('SIGINT', () => void shutdown(0, 'SIGINT'));
  return shutdown;
}
