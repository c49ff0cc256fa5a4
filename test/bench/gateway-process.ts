/**
 * The sandbox gateway as its own process for test/bench/gateway.ts: SandboxGateway with production
 * logging (JSON at info, to /dev/null) and the production defaults, routing one host label to a
 * PostgreSQL given on the command line. No Kubernetes: the route table stands in for the informer.
 * Prints `{"port": …}` once listening.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import pino from 'pino';
import { Registry } from 'prom-client';
import { loadGatewayConfig } from '../../gateway/src/config.ts';
import { SandboxGateway } from '../../gateway/src/server.ts';

const [domain, cert, key, label, pgPort] = process.argv.slice(2) as [string, string, string, string, string];
const defaults = loadGatewayConfig({
  EPREUVE_GATEWAY_DOMAIN: domain,
  EPREUVE_GATEWAY_TLS_CERT_FILE: cert,
  EPREUVE_GATEWAY_TLS_KEY_FILE: key,
});
const gateway = new SandboxGateway({
  domain,
  tls: createSecureContext({ cert: readFileSync(cert), key: readFileSync(key) }),
  resolve: (l) =>
    l === label
      ? {
          route: {
            assessment: 'bench/candidate',
            sandbox: 'warehouse',
            kind: 'postgres',
            host: '127.0.0.1',
            port: Number(pgPort),
          },
        }
      : { refused: `no sandbox is served under "${l}"` },
  maxConnections: defaults.EPREUVE_GATEWAY_MAX_CONNECTIONS,
  maxConnectionsPerClient: defaults.EPREUVE_GATEWAY_MAX_CONNECTIONS_PER_CLIENT,
  maxConnectionsPerSandbox: defaults.EPREUVE_GATEWAY_MAX_CONNECTIONS_PER_SANDBOX,
  maxPendingPerSandbox: defaults.EPREUVE_GATEWAY_MAX_PENDING_PER_SANDBOX,
  maxPendingTotalPerSandbox: defaults.EPREUVE_GATEWAY_MAX_PENDING_TOTAL_PER_SANDBOX,
  idleTimeoutMs: defaults.EPREUVE_GATEWAY_IDLE_TIMEOUT_SECONDS * 1000,
  handshakeTimeoutMs: defaults.EPREUVE_GATEWAY_HANDSHAKE_TIMEOUT_SECONDS * 1000,
  log: pino({ level: 'info' }, pino.destination('/dev/null')),
  registry: new Registry(),
});
const port = await gateway.listen(0, '127.0.0.1');
console.log(JSON.stringify({ port }));
process.on('SIGTERM', () => void gateway.close().then(() => process.exit(0)));
