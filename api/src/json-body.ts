import type { FastifyInstance } from 'fastify';
import { Malformed } from './services/errors.ts';

/** No request body of this API nests deeper; real ones stay under 10. */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether JSON text nests arrays and objects deeper than `max`, in one pass over the characters
 * (brackets inside strings do not count). Hand-written because neither JSON.parse nor
 * secure-json-parse bounds depth, and both take far longer on a deep body than on a flat one of the
 * same size: 120 000 nested arrays in a 240 KB body stalled the event loop ~750 ms per request.
 * Malformed text is left to the parser, which refuses it as it did.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return false;
}

/**
 * JSON bodies as fastify parses them (secure-json-parse: `__proto__` and `constructor.prototype`
 * refused, an empty body refused), after a depth check: a body nested deeper than MAX_JSON_DEPTH is
 * a 400 naming the body before it is parsed. Parsing happens before the per-principal rate limit
 * (preHandler, which needs the authenticated principal), so the check must be cheap and come first.
 */
export function registerJsonParser(
  app: Pick<FastifyInstance, 'getDefaultJsonParser' | 'addContentTypeParser'>,
): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, raw, done) => {
    const body = raw as string; // parseAs: 'string'
    if (nestsDeeperThan(body, MAX_JSON_DEPTH)) {
      done(
        new Malformed(
          `the body nests JSON deeper than ${MAX_JSON_DEPTH} levels`,
          'body',
          `nested deeper than ${MAX_JSON_DEPTH} levels`,
        ),
        undefined,
      );
      return;
    }
    parse(request, body, done);
  });
}
