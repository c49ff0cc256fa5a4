import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';

const WEB = join(import.meta.dirname, '..', 'web');
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** The candidate and staff pages: static files, read once, served with their own scripts (CSP 'self'). */
export default async function pageRoutes(app: FastifyInstance) {
  const file = (name: string) => ({
    body: readFileSync(join(WEB, name)),
    type: TYPES[name.slice(name.lastIndexOf('.'))]!,
  });
  const pages = {
    '/candidate': file('candidate.html'),
    '/staff': file('staff.html'),
    '/docs': file('docs.html'),
  };
  const assets = Object.fromEntries(
    ['candidate.js', 'staff.js', 'docs.js', 'i18n.js', 'common.css'].map((n) => [n, file(n)]),
  );
  for (const [path, page] of Object.entries(pages)) {
    app.get(path, { schema: { hide: true } }, async (_req, reply) =>
      reply.type(page.type).header('cache-control', 'no-store').send(page.body),
    );
  }
  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/staff'));
  app.get('/assets/:file', { schema: { hide: true } }, async (request, reply) => {
    const asset = assets[(request.params as { file: string }).file];
    if (!asset) return reply.callNotFound();
    return reply.type(asset.type).header('cache-control', 'public, max-age=300').send(asset.body);
  });
}
