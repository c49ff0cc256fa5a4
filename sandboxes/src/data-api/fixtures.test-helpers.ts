/** Shared by the data API's unit tests: the small retail dataset, and a client-side schema check. */
import { resolveDataset } from '../datasets/catalog.ts';
import { ROW_SCHEMAS } from './openapi.ts';
import { parseTimestamp, type ResourceName, type Row } from './pagination.ts';

export const data = resolveDataset('retail@1').generate('small');

/** A client-side check of a row against the documented schema, as a careful candidate would. */
export function conforms(resource: ResourceName, row: Row): boolean {
  const schema = ROW_SCHEMAS[resource];
  if (Object.keys(row).sort().join() !== Object.keys(schema).sort().join()) return false;
  return Object.entries(schema).every(([field, s]) => {
    const v = row[field];
    const types = ([] as unknown[]).concat(s.type);
    if (v === null) return types.includes('null');
    if (types.includes('integer')) return Number.isInteger(v);
    if (typeof v !== 'string') return false;
    if (s.format === 'date-time' && parseTimestamp(v) === null) return false;
    if (typeof s.pattern === 'string' && !new RegExp(s.pattern).test(v)) return false;
    if (Array.isArray(s.enum) && !s.enum.includes(v)) return false;
    return true;
  });
}
