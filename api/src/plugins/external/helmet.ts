import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import helmet from 'helmet';

/**
 * Security headers; the pages load scripts and styles from 'self' only. helmet's own middleware
 * (not @fastify/helmet, which calls `helmet(options)` on every request and re-parses the CSP
 * directives each time: 9 % of the API's CPU in the session benchmark's profile) is run once,
 * at start, on a recording response: its headers depend on nothing in the request (no per-route
 * options, no CSP nonces here), so every response gets that same set through fastify's reply
 * headers — one object copy per request instead of thirteen `res.setHeader` calls, 5 % of the
 * session endpoint's CPU when the middleware ran per request.
 */
export default fp(
  async function helmetPlugin(app: FastifyInstance) {
    const middleware = helmet({
      contentSecurityPolicy: {
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", 'data:'],
          // Not helmet's default upgrade-insecure-requests: behind plain HTTP on an address that
          // is not localhost (make up's NodePort, http://10.244.0.1:30080) the browser would fetch
          // the pages' own scripts over https, fail, and leave forms that submit natively (the
          // staff token in a URL). Behind TLS the scripts come over https anyway.
          upgradeInsecureRequests: null,
        },
      },
    });
    const headers = recordHeaders(middleware);
    app.addHook('onRequest', (_request, reply, done) => {
      reply.headers(headers);
      done();
    });
  },
  { name: 'external-helmet' },
);

/** The headers helmet's middleware sets, by running it once on a response that records them. */
export function recordHeaders(middleware: ReturnType<typeof helmet>): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader: (name: string, value: string) => {
      headers[name.toLowerCase()] = value;
    },
    removeHeader: (name: string) => {
      delete headers[name.toLowerCase()];
    },
  };
  let failed: unknown;
  middleware({} as never, res as never, (err?: unknown) => {
    failed = err;
  });
  if (failed) throw failed;
  return headers;
}
