/** Unit tests for openapi.ts: the row schemas match the dataset, and the document covers the API. */
import { describe, expect, it } from 'vitest';
import { DEFAULTS } from './config.ts';
import { conforms, data } from './fixtures.test-helpers.ts';
import { openApiDocument } from './openapi.ts';
import { RESOURCE_NAMES, type Row } from './pagination.ts';

describe('the dataset matches the documented schema', () => {
  it.each(RESOURCE_NAMES)('%s', (resource) => {
    const rows = data[resource] as unknown as Row[];
    expect(rows.length).toBeGreaterThan(10);
    expect(rows.filter((r) => !conforms(resource, r))).toEqual([]);
  });
});

describe('OpenAPI document', () => {
  it('describes every endpoint and parameter', () => {
    const doc = openApiDocument({ ...DEFAULTS, adminKey: 'x' });
    for (const r of RESOURCE_NAMES) {
      const list = (
        doc.paths[`/v1/${r}`] as { get: { parameters: Array<{ $ref: string }>; responses: object } }
      ).get;
      expect(list.parameters.map((p) => p.$ref.split('/').pop())).toEqual([
        'cursor',
        'offset',
        'limit',
        'updated_since',
      ]);
      expect(Object.keys(list.responses)).toEqual(
        expect.arrayContaining(['200', '400', '401', '429', '500', '502', '503']),
      );
      expect(doc.paths[`/v1/${r}/{id}`]).toBeDefined();
    }
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/healthz',
        '/openapi.json',
        '/docs',
        '/admin/requests',
        '/admin/faults',
        '/admin/api-key',
      ]),
    );
    // Without an admin key the admin endpoints do not exist, so they are not documented.
    expect(Object.keys(openApiDocument(DEFAULTS).paths).some((p) => p.startsWith('/admin'))).toBe(false);
  });
});
