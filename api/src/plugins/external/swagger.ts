import swagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import type { OpenAPIV3_1 } from 'openapi-types';

/**
 * The named schemas the document uses. The zod transform writes an input and an output version of
 * every named schema; views are only ever output, so their input twins are dropped.
 */
const onlyReferencedSchemas: typeof jsonSchemaTransformObject = (input) => {
  const doc = jsonSchemaTransformObject(input) as OpenAPIV3_1.Document;
  const schemas = doc.components?.schemas ?? {};
  const refs = (value: unknown) =>
    [...JSON.stringify(value).matchAll(/"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
  const keep = new Set<string>();
  const queue = refs(doc.paths);
  while (queue.length) {
    const name = queue.pop()!;
    if (keep.has(name) || !schemas[name]) continue;
    keep.add(name);
    queue.push(...refs(schemas[name]));
  }
  return {
    ...doc,
    components: {
      ...doc.components,
      schemas: Object.fromEntries(Object.entries(schemas).filter(([name]) => keep.has(name))),
    },
  };
};

/**
 * The OpenAPI 3.1 document, from the routes' zod schemas (request and every response), served at
 * /openapi.json; /docs renders it. Two bearer schemes: staff (OIDC JWT or API key) and candidate
 * (the signed link token); each operation names its own, and the probes none.
 */
export default fp(
  async function swaggerPlugin(app: FastifyInstance) {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Épreuve API',
          version: '0.1.0',
          description:
            'Create and manage assessments; candidates reach their sandboxes and get graded. Every error is ' +
            'RFC 9457 application/problem+json.',
        },
        components: {
          securitySchemes: {
            staff: {
              type: 'http',
              scheme: 'bearer',
              description: 'An OIDC access token (JWT) from the configured issuer, or an API key (epk_…)',
            },
            candidate: {
              type: 'http',
              scheme: 'bearer',
              bearerFormat: 'JWT',
              description: 'The token of the candidate link (the #token=… of the URL staff sent)',
            },
          },
        },
      },
      transform: jsonSchemaTransform,
      transformObject: onlyReferencedSchemas,
    });
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  },
  { name: 'external-swagger' },
);
