import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** Security headers; the pages load scripts and styles from 'self' only. */
export default fp(
  async function helmetPlugin(app: FastifyInstance) {
    await app.register(helmet, {
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
  },
  { name: 'external-helmet' },
);
