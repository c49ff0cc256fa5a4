import { type Dataset, datasetKey } from '../datasets/catalog.ts';
import type { RetailData, Size } from '../datasets/retail/v1.ts';

const cache = new Map<string, RetailData>();

/**
 * The dataset with its generator memoised for this process. Generating `standard` is seconds of
 * CPU, and one seed run needs the same data several times (PostgreSQL's tables, then each MongoDB
 * migration's collection) under the seed Job's CPU limit: generated once, it is shared. The
 * generator is deterministic (same size and variant, same data) and the seeders only read it.
 */
export function generatedOnce(dataset: Dataset): Dataset {
  return {
    ...dataset,
    generate(size: Size, variant = 0): RetailData {
      const key = `${datasetKey(dataset)}/${size}/${variant}`;
      let data = cache.get(key);
      if (!data) {
        data = dataset.generate(size, variant);
        cache.set(key, data);
      }
      return data;
    },
  };
}
