import { MAX_HIDDEN_VARIANTS } from '@epreuve/crds';
import { type Dataset, datasetKey } from '../datasets/catalog.ts';
import { readPrebuilt } from '../datasets/prebuilt.ts';
import type { DataScope, RetailData, Size } from '../datasets/retail/v1.ts';

const cache = new Map<string, RetailData>();
const keyOf = (d: Dataset, size: Size, variant: number, scope: DataScope, salt?: Buffer) =>
  `${datasetKey(d)}/${size}/${variant}/${scope}${salt ? `/${salt.toString('hex')}` : ''}`;

/** Where to look for the image's prebuilt tables first (datasets/prebuilt.ts). */
export interface PrebuiltSource {
  dir: string;
  log: (line: string) => void;
}

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
    generate(size: Size, variant = 0, scope: DataScope = 'all', salt?: Buffer): RetailData {
      const key = (s: DataScope) => keyOf(dataset, size, variant, s, salt);
      // The full dataset holds the same tables: no second generation for a tables-only request.
      let data = cache.get(key(scope)) ?? (scope === 'tables' ? cache.get(key('all')) : undefined);
      if (!data) {
        data = dataset.generate(size, variant, scope, salt);
        cache.set(key(scope), data);
      }
      return data;
    },
  };
}

/**
 * Memoises the tables of `dataset` at `size` and `variant` for generatedOnce, read from the image's
 * prebuilt file when it holds them (usable: datasets/prebuilt.ts checks), else generated. Says
 * which, for the seed log.
 */
export function prepareTables(
  dataset: Dataset,
  size: Size,
  variant: number,
  prebuilt?: PrebuiltSource,
): 'memoised' | 'prebuilt' | 'generated' {
  const key = keyOf(dataset, size, variant, 'tables');
  if (cache.has(key) || cache.has(keyOf(dataset, size, variant, 'all'))) return 'memoised';
  const data = prebuilt && readPrebuilt(prebuilt.dir, dataset, size, variant, prebuilt.log);
  if (data) {
    cache.set(key, data);
    return 'prebuilt';
  }
  generatedOnce(dataset).generate(size, variant, 'tables');
  return 'generated';
}

/**
 * generatedOnce, whose tables come from the image's prebuilt file when it holds them
 * (prepareTables) the first time they are asked for, with a line saying how long and which. Asked
 * for only by a load that needs them: a database the image preloaded needs none.
 */
export function preparedOnce(
  dataset: Dataset,
  prebuilt: PrebuiltSource | undefined,
  log: (line: string) => void,
): Dataset {
  const once = generatedOnce(dataset);
  return {
    ...once,
    generate(size: Size, variant = 0, scope: DataScope = 'all', salt?: Buffer): RetailData {
      // Salted (a hidden variant): this assessment's own, never in the image.
      if (salt) return once.generate(size, variant, scope, salt);
      if (scope === 'tables') {
        const before = Date.now();
        const how = prepareTables(dataset, size, variant, prebuilt);
        if (how !== 'memoised')
          log(
            `prepared ${datasetKey(dataset)} (${size}${variant ? `, variant ${variant}` : ''}): ${how} in ${Date.now() - before} ms`,
          );
      }
      return once.generate(size, variant, scope);
    },
  };
}

/**
 * The dataset whose hidden variants (1 … MAX_HIDDEN_VARIANTS) are generated with `salt`: drawn
 * at random for each seed, so no two assessments share hidden data and nobody can rebuild it from
 * the code (red team: a pasted list of every variant's results passed). The candidate's data and
 * the data API's copy stay as they are (fixed, prebuilt in the images). The grader needs no
 * salt: it computes the references on the hidden databases themselves.
 */
export function withHiddenSalt(dataset: Dataset, salt: Buffer): Dataset {
  return {
    ...dataset,
    generate(size: Size, variant = 0, scope: DataScope = 'all'): RetailData {
      const hidden = variant >= 1 && variant <= MAX_HIDDEN_VARIANTS;
      return dataset.generate(size, variant, scope, hidden ? salt : undefined);
    },
  };
}
