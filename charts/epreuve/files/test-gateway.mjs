// `helm test` (templates/tests/gateway.yaml): the gateway is ready, and answers TLS on its public
// Service for a name under its domain — with a certificate for *.<domain> and, since no sandbox
// has that name, a 503 that says so. Retries for 30 s, like the API's test.
import { request as httpsRequest } from 'node:https';

const {
  GATEWAY_HOST: host,
  GATEWAY_PORT: port,
  GATEWAY_DOMAIN: domain,
  GATEWAY_METRICS_URL: metrics,
} = process.env;
// TIMEOUT_SECONDS: the chart leaves it unset; the chart tests shorten it for a failing case.
const deadline = Date.now() + Number(process.env.TIMEOUT_SECONDS ?? 30) * 1_000;

async function attempt(what, check) {
  for (;;) {
    let problem;
    try {
      const out = await check();
      console.log(`${what}: ${out}`);
      return;
    } catch (err) {
      problem = err.cause?.message ?? err.message;
    }
    if (Date.now() > deadline) {
      console.error(`${what}: ${problem}`);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

await attempt(`${metrics}/readyz`, async () => {
  const res = await fetch(`${metrics}/readyz`, { signal: AbortSignal.timeout(5_000) });
  if (res.status !== 200) throw new Error(`${res.status} ${(await res.text()).slice(0, 200)}`);
  return '200';
});

const servername = `epreuve-helm-test.${domain}`;
await attempt(
  `https://${host}:${port} as ${servername}`,
  () =>
    new Promise((resolve, reject) => {
      // The certificate may be the chart's self-signed one: checked by name below, not by CA. ALPN
      // http/1.1 tells the gateway this is HTTPS, so it answers its refusal as an HTTP 503.
      const req = httpsRequest(
        {
          host,
          port,
          servername,
          path: '/',
          ALPNProtocols: ['http/1.1'],
          rejectUnauthorized: false,
          // A fresh connection each attempt: a resumed TLS session shows no certificate.
          agent: false,
          timeout: 5_000,
        },
        (res) => {
          res.resume();
          if (!String(cert.subjectaltname).split(', ').includes(`DNS:*.${domain}`))
            return reject(new Error(`certificate names ${cert.subjectaltname}, not *.${domain}`));
          if (res.statusCode !== 503)
            return reject(new Error(`status ${res.statusCode}, want 503 (no such sandbox)`));
          resolve(`503 for an unknown sandbox, certificate for *.${domain}`);
        },
      );
      // Read at the handshake: once the gateway has answered and closed, the socket has no peer.
      let cert = {};
      req.on('socket', (socket) => socket.once('secureConnect', () => (cert = socket.getPeerCertificate())));
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end();
    }),
);
