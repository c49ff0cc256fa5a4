import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import helmet from 'helmet';

/**
 * Security headers; the pages load scripts and styles from 'self' only. helmet's middleware is
 * built once, here: @fastify/helmet calls `helmet(options)` on every request, which re-parses the
 * CSP directives each time (9 % of the API's CPU in the session benchmark's profile), for
 * options that never change (no per-route helmet options, no CSP nonces in this API).
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
    app.addHook('onRequest', (request, reply, done) => {
      middleware(request.raw, reply.raw, (err) => done(err as Error | undefined));
    });
  },
  { name: 'external-helmet' },
);
