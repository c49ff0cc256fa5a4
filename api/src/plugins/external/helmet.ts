import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import helmet from 'helmet';

/** The pages' policy: scripts and styles from 'self' only. */
export const pageHelmet = () =>
  helmet({
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

/**
 * What OWASP's REST Security Cheat Sheet lists for every API response: HSTS, nosniff, and
 * framing refused (CSP `frame-ancestors 'none'`, X-Frame-Options DENY); Content-Type and
 * Cache-Control are the routes'. The others helmet sets (a page's CSP, cross-origin
 * opener/resource policies, Origin-Agent-Cluster, Referrer-Policy, X-DNS-Prefetch-Control,
 * X-Download-Options, X-Permitted-Cross-Domain-Policies, X-XSS-Protection) act on documents a
 * browser renders or navigates: a JSON response is neither, and the API's credentials are
 * bearer tokens, never cookies, so no cross-origin load of it carries any.
 */
export const apiHelmet = () =>
  helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    },
    xFrameOptions: { action: 'deny' },
    crossOriginOpenerPolicy: false,
    crossOriginResourcePolicy: false,
    originAgentCluster: false,
    referrerPolicy: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  });

/**
 * Security headers: helmet's full set on the pages and everything else outside /api/, the short
 * set above on /api/ (JSON, a CSV export; the 404s there are problem+json). Fewer bytes on every
 * API response: 8 headers and ~500 bytes less of the session endpoint's ~950. Decided by the
 * raw URL's prefix, not the matched route: a path that reaches an API route by other spelling
 * (percent-encoded) gets the full set, never less.
 *
 * helmet's own middleware (not @fastify/helmet, which calls `helmet(options)` on every request and
 * re-parses the CSP directives each time: 9 % of the API's CPU in the session benchmark's
 * profile) is run once, at start, on a recording response: its headers depend on nothing in the
 * request (no per-route options, no CSP nonces here), so every response gets that same set
 * through fastify's reply headers — one object copy per request instead of `res.setHeader` calls.
 */
export default fp(
  async function helmetPlugin(app: FastifyInstance) {
    const page = recordHeaders(pageHelmet());
    const api = recordHeaders(apiHelmet());
    app.addHook('onRequest', (request, reply, done) => {
      reply.headers(request.url.startsWith('/api/') ? api : page);
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
