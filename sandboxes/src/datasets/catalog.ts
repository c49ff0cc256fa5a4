import { RETAIL_DDL, RETAIL_TABLES } from './retail/postgres.ts';
import { type DataScope, generateRetail, type RetailData, type Size } from './retail/v1.ts';

/** A versioned dataset: how to generate it and how it maps onto each sandbox kind. */
export interface Dataset {
  name: string;
  version: number;
  description: string;
  /**
   * Variant 0 is what candidates see; others are hidden re-grade data of the same shape. Scope
   * `tables`: the PostgreSQL tables only, identical to the full dataset's, the collections empty.
   * `salt` (16 bytes) makes a hidden variant this assessment's own (retail/v1.ts).
   */
  generate(size: Size, variant?: number, scope?: DataScope, salt?: Buffer): RetailData;
  postgres: { ddl: string; tables: typeof RETAIL_TABLES; schema: string };
  mongo: { collections: Array<keyof RetailData> };
}

const DATASETS: Dataset[] = [
  {
    name: 'retail',
    version: 1,
    description:
      'A retail bank: customers, accounts, merchants, transactions, exchange rates, card events, app sessions.',
    generate: generateRetail,
    postgres: { ddl: RETAIL_DDL, tables: RETAIL_TABLES, schema: 'retail' },
    mongo: { collections: ['card_events', 'app_sessions'] },
  },
];

/** Resolves `retail` (latest) or `retail@1`; throws naming what exists when it does not. */
export function resolveDataset(ref: string): Dataset {
  const m = /^([a-z0-9-]+)(?:@(\d+))?$/.exec(ref);
  if (!m) throw new Error(`dataset "${ref}" is not a dataset reference such as retail or retail@1`);
  const candidates = DATASETS.filter((d) => d.name === m[1]).sort((a, b) => b.version - a.version);
  const found = m[2] ? candidates.find((d) => d.version === Number(m[2])) : candidates[0];
  if (!found) {
    const known = DATASETS.map((d) => `${d.name}@${d.version}`).join(', ');
    throw new Error(`unknown dataset "${ref}"; available: ${known}`);
  }
  return found;
}

export const datasetKey = (d: Dataset) => `${d.name}@${d.version}`;

/** Every dataset of the catalogue, each version (what an image build prepares ahead). */
export const allDatasets = (): readonly Dataset[] => DATASETS;

/** Whether `d` is its name's latest version (what a bare `retail` resolves to). */
export const isLatest = (d: Dataset) => resolveDataset(d.name) === d;
