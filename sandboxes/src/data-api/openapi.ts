/**
 * The API's documentation: the documented row schemas, the OpenAPI 3.1 document served at
 * /openapi.json, and the static HTML page served at /docs, rendered from that document.
 */
import type { DataApiConfig } from './config.ts';
import { MAX_LIMIT, RESOURCE_NAMES, RESOURCES, type ResourceName, SINGULAR } from './pagination.ts';

type Schema = Record<string, unknown>;
const str: Schema = { type: 'string' };
const int: Schema = { type: 'integer' };
const time: Schema = { type: 'string', format: 'date-time' };
const nullable = (s: Schema): Schema => ({ ...s, type: [s.type, 'null'] });
const oneOf = (...values: string[]): Schema => ({ type: 'string', enum: values });

/** The documented shape of each resource's rows (the unit tests check the dataset against it). */
export const ROW_SCHEMAS: Record<ResourceName, Record<string, Schema>> = {
  customers: {
    customer_id: int,
    first_name: str,
    last_name: str,
    email: nullable(str),
    country: { ...str, description: 'ISO 3166-1 alpha-2' },
    city: str,
    timezone: { ...str, description: 'IANA time zone' },
    segment: oneOf('retail', 'premium', 'business'),
    created_at: time,
    updated_at: time,
  },
  accounts: {
    account_id: int,
    customer_id: int,
    iban: str,
    type: oneOf('checking', 'savings', 'card'),
    currency: { ...str, description: 'ISO 4217' },
    opened_at: time,
    closed_at: nullable(time),
    updated_at: time,
  },
  merchants: {
    merchant_id: int,
    name: str,
    category: nullable(str),
    country: str,
    updated_at: time,
  },
  transactions: {
    transaction_id: int,
    account_id: int,
    merchant_id: nullable(int),
    counterparty_account_id: nullable(int),
    kind: oneOf('card', 'transfer', 'fee', 'refund', 'salary'),
    direction: oneOf('debit', 'credit'),
    amount: {
      type: 'string',
      pattern: '^-?\\d+\\.\\d{2}$',
      description: 'Decimal with two places, as a string (never a float)',
    },
    currency: str,
    booked_at: time,
    ingested_at: time,
    reference: str,
    updated_at: time,
  },
};

const problemRef = { $ref: '#/components/responses/Problem' };

export function openApiDocument(
  config: Pick<DataApiConfig, 'dataset' | 'pageSize' | 'rateLimitPerMinute' | 'adminKey'>,
) {
  const paths: Record<string, unknown> = {};
  const errors = {
    '401': { ...problemRef, description: 'Missing or wrong API key' },
    '429': {
      description: `More than ${config.rateLimitPerMinute} requests per minute; wait Retry-After seconds`,
      headers: { 'Retry-After': { schema: { type: 'integer', minimum: 1 } } },
      content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
    },
    '500': { ...problemRef, description: 'Server error; retry with backoff' },
    '502': { ...problemRef, description: 'Bad gateway; retry with backoff' },
    '503': { ...problemRef, description: 'Unavailable; retry after Retry-After seconds' },
  };
  for (const resource of RESOURCE_NAMES) {
    const rowRef = { $ref: `#/components/schemas/${SINGULAR[resource]}` };
    paths[`/v1/${resource}`] = {
      get: {
        operationId: `list_${resource}`,
        summary: `List ${resource}`,
        description:
          'Rows in (updated_at, id) order. Page with cursor (pass next_cursor back until it is null) or with offset (the response then carries total); not both.',
        tags: ['data'],
        parameters: ['cursor', 'offset', 'limit', 'updated_since'].map((p) => ({
          $ref: `#/components/parameters/${p}`,
        })),
        responses: {
          '200': {
            description: 'A page of rows',
            headers: {
              'RateLimit-Limit': { $ref: '#/components/headers/RateLimit-Limit' },
              'RateLimit-Remaining': { $ref: '#/components/headers/RateLimit-Remaining' },
              'RateLimit-Reset': { $ref: '#/components/headers/RateLimit-Reset' },
            },
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['data', 'next_cursor'],
                  properties: {
                    data: { type: 'array', items: rowRef },
                    next_cursor: { type: ['string', 'null'], description: 'null on the last page' },
                    total: {
                      type: 'integer',
                      description: 'Offset pagination only: rows matching the filter',
                    },
                    next_offset: {
                      type: ['integer', 'null'],
                      description: 'Offset pagination only: offset of the next page, null on the last page',
                    },
                  },
                },
              },
            },
          },
          '400': { ...problemRef, description: 'A bad parameter, named in invalid_params' },
          ...errors,
        },
      },
    };
    paths[`/v1/${resource}/{id}`] = {
      get: {
        operationId: `get_${SINGULAR[resource]}`,
        summary: `One ${SINGULAR[resource]} by ${RESOURCES[resource]}`,
        tags: ['data'],
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } }],
        responses: {
          '200': {
            description: `The ${SINGULAR[resource]}`,
            content: { 'application/json': { schema: rowRef } },
          },
          '400': { ...problemRef, description: 'id is not a positive integer' },
          '404': { ...problemRef, description: `No such ${SINGULAR[resource]}` },
          ...errors,
        },
      },
    };
  }
  const open = { security: [], tags: ['meta'] };
  paths['/healthz'] = { get: { ...open, summary: 'Liveness', responses: { '200': { description: 'OK' } } } };
  paths['/openapi.json'] = {
    get: { ...open, summary: 'This document', responses: { '200': { description: 'OK' } } },
  };
  paths['/docs'] = {
    get: { ...open, summary: 'Human-readable documentation', responses: { '200': { description: 'HTML' } } },
  };
  if (config.adminKey) {
    const admin = { security: [{ adminKey: [] }, { bearer: [] }], tags: ['admin'] };
    paths['/admin/requests'] = {
      get: {
        ...admin,
        summary: 'Recorded requests, newest last (reviewers)',
        parameters: [
          { name: 'since', in: 'query', schema: time, description: 'Only requests after this time' },
          {
            name: 'limit',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: 10_000, default: 1000 },
          },
        ],
        responses: { '200': { description: '{data: [...]}' }, '400': problemRef, '401': problemRef },
      },
    };
    paths['/admin/faults'] = {
      get: { ...admin, summary: 'Current fault settings', responses: { '200': { description: 'OK' } } },
      post: {
        ...admin,
        summary: 'Change fault settings without a restart',
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['rate'],
                additionalProperties: false,
                properties: {
                  rate: { type: 'number', minimum: 0, maximum: 0.5 },
                  slow_max_ms: { type: 'integer', minimum: 0, maximum: 60_000 },
                  seed: { type: 'integer', minimum: 0 },
                },
              },
            },
          },
        },
        responses: { '200': { description: 'The new settings' }, '400': problemRef, '401': problemRef },
      },
    };
    paths['/admin/api-key'] = {
      put: {
        ...admin,
        summary: "Replace the candidates' key without a restart (the old one is refused from now on)",
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['key'],
                additionalProperties: false,
                properties: { key: { type: 'string', minLength: 22 } },
              },
            },
          },
        },
        responses: { '204': { description: 'In force' }, '400': problemRef, '401': problemRef },
      },
    };
  }
  const rateHeader = (description: string) => ({ description, schema: { type: 'integer' } });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Data API',
      version: '1.0.0',
      description: `Dataset ${config.dataset}. Authenticate with X-API-Key: <key> or Authorization: Bearer <key>. Errors are RFC 9457 problem+json. At most ${config.rateLimitPerMinute} requests per minute per key.`,
    },
    security: [{ apiKey: [] }, { bearer: [] }],
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        bearer: { type: 'http', scheme: 'bearer' },
        ...(config.adminKey ? { adminKey: { type: 'apiKey', in: 'header', name: 'X-Admin-Key' } } : {}),
      },
      parameters: {
        cursor: {
          name: 'cursor',
          in: 'query',
          description: 'Opaque: the next_cursor of the previous page. Not with offset.',
          schema: str,
        },
        offset: {
          name: 'offset',
          in: 'query',
          description: 'Rows to skip. Not with cursor. The response then carries total.',
          schema: { type: 'integer', minimum: 0 },
        },
        limit: {
          name: 'limit',
          in: 'query',
          description: 'Rows per page',
          schema: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: config.pageSize },
        },
        updated_since: {
          name: 'updated_since',
          in: 'query',
          description: 'Only rows with updated_at strictly after this RFC 3339 timestamp (incremental loads)',
          schema: time,
        },
      },
      headers: {
        'RateLimit-Limit': rateHeader('Requests allowed per minute'),
        'RateLimit-Remaining': rateHeader('Requests left right now'),
        'RateLimit-Reset': rateHeader('Seconds until the full allowance is back'),
      },
      responses: {
        Problem: {
          description: 'An RFC 9457 problem',
          content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
        },
      },
      schemas: {
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status'],
          properties: {
            type: str,
            title: str,
            status: int,
            detail: str,
            instance: str,
            invalid_params: {
              type: 'array',
              items: { type: 'object', properties: { name: str, reason: str } },
            },
          },
        },
        ...Object.fromEntries(
          RESOURCE_NAMES.map((r) => [
            SINGULAR[r],
            {
              type: 'object',
              required: Object.keys(ROW_SCHEMAS[r]),
              additionalProperties: false,
              properties: ROW_SCHEMAS[r],
            },
          ]),
        ),
      },
    },
  };
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A static page rendered from the OpenAPI document: no script, no external asset. */
export function docsPage(doc: ReturnType<typeof openApiDocument>): string {
  const params = doc.components.parameters as Record<string, { name: string; description: string }>;
  const sections = Object.entries(doc.paths as Record<string, Record<string, Record<string, unknown>>>)
    .flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => {
        const ps = (
          (op.parameters ?? []) as Array<{ $ref?: string; name?: string; description?: string }>
        ).map((p) => (p.$ref ? params[p.$ref.split('/').pop()!]! : p));
        const rows = ps
          .map(
            (p) =>
              `<tr><td><code>${escapeHtml(p.name ?? '')}</code></td><td>${escapeHtml(p.description ?? '')}</td></tr>`,
          )
          .join('');
        const codes = Object.keys((op.responses ?? {}) as object).join(', ');
        const auth = Array.isArray(op.security) && op.security.length === 0 ? 'no key' : 'key required';
        return `<section><h2><code>${method.toUpperCase()} ${escapeHtml(path)}</code></h2>
<p>${escapeHtml(String(op.summary ?? ''))}${op.description ? ` — ${escapeHtml(String(op.description))}` : ''} <em>(${auth})</em></p>
${rows ? `<table><tr><th>parameter</th><th>meaning</th></tr>${rows}</table>` : ''}<p>Responses: ${codes}</p></section>`;
      }),
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(doc.info.title)}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}code{background:#f3f3f3;padding:0 .2em}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left}</style>
</head><body><h1>${escapeHtml(doc.info.title)}</h1><p>${escapeHtml(doc.info.description)}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
${sections}
</body></html>`;
}
