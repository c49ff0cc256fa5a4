import { type Dataset, datasetKey } from '../datasets/catalog.ts';
import type { DataScope, RetailData, Size } from '../datasets/retail/v1.ts';

const cache = new Map<string, RetailData>();

/**
 * The dataset with its generator memoised for this process. Generating `standard` is seconds of
 * CPU, and one seed run needs the same data several times (PostgreSQL's tables, then each MongoDB
 * migration's collection) under the seed Job's CPU limit: generated once, it is shared. The
 * generator is deterministic (same size and variant, same data) and the seeders only read it.
 * PostgreSQL asks for its tables only (`tables`), which a full dataset already generated serves.
 */
export function generatedOnce(dataset: Dataset): Dataset {
  return {
    ...dataset,
    generate(size: Size, variant = 0, scope: DataScope = 'all'): RetailData {
      const key = (s: DataScope) => `${datasetKey(dataset)}/${size}/${variant}/${s}`;
      // The full dataset holds the same tables: no second generation for a tables-only request.
      let data = cache.get(key(scope)) ?? (scope === 'tables' ? cache.get(key('all')) : undefined);
      if (!data) {
        data = dataset.generate(size, variant, scope);
        cache.set(key(scope), data);
      }
      return data;
    },
  };
}
