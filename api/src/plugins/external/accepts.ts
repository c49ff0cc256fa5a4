import accepts from '@fastify/accepts';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { LANGUAGES, type Language } from '../../services/errors.ts';

/**
 * Content negotiation (@fastify/accepts), and `request.pageLanguage()`: the language of the pages a
 * request prefers by its Accept-Language (q-values honoured), English when it names neither.
 */
export default fp(
  async function acceptsPlugin(app: FastifyInstance) {
    await app.register(accepts);
    app.decorateRequest('pageLanguage', function pageLanguage(this: FastifyRequest): Language {
      return (this.languages([...LANGUAGES]) || 'en') as Language;
    });
  },
  { name: 'external-accepts' },
);

declare module 'fastify' {
  interface FastifyRequest {
    /** The page language this request prefers (Accept-Language), `en` by default. */
    pageLanguage(): Language;
  }
}
