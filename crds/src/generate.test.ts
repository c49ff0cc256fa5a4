import { describe, expect, it } from 'vitest';
import { staleFiles } from './generate.ts';

describe('generated CRD files', () => {
  it('match the zod schemas (run `npm run generate` after changing crds/src)', () => {
    expect(staleFiles()).toEqual([]);
  });
});
