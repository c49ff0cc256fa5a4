import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATA_API_VARIANT } from '@epreuve/crds';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveDataset } from './catalog.ts';
import {
  generatorFingerprint,
  PREBUILT_VARIANTS,
  type PrebuiltDataset,
  prebuiltFile,
  prebuiltSha256,
  readPrebuilt,
  tablesSha256,
  writePrebuilt,
} from './prebuilt.ts';
import type { RetailData } from './retail/v1.ts';

const retail = resolveDataset('retail@1');
const dir = mkdtempSync(join(tmpdir(), 'prebuilt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Reads with the log lines collected. */
function read(variant: number, d: PrebuiltDataset = retail) {
  const lines: string[] = [];
  const data = readPrebuilt(dir, d, 'small', variant, (l) => lines.push(l));
  return { data, lines };
}

/** Writes `variant`, then lets `spoil` change the file's text. */
function spoiled(variant: number, spoil: (text: string) => string) {
  const file = writePrebuilt(dir, retail, 'small', variant);
  writeFileSync(file, spoil(readFileSync(file, 'utf8')));
  return read(variant);
}

describe('prebuilt tables', () => {
  it('read back exactly what the generator returns, for the candidate and the data API', () => {
    for (const variant of [0, DATA_API_VARIANT]) {
      const file = writePrebuilt(dir, retail, 'small', variant);
      expect(file).toBe(join(dir, 'retail@1', 'small', `${variant}.json`));
      const { data, lines } = read(variant);
      expect(lines).toEqual([]);
      expect(data).toStrictEqual(retail.generate('small', variant, 'tables'));
      expect(data?.transactions.length).toBeGreaterThan(100);
    }
  });

  it('are what the seed Job and the data API ask for at the standard size', () => {
    expect(PREBUILT_VARIANTS).toEqual([
      { size: 'standard', variant: 0 },
      { size: 'standard', variant: DATA_API_VARIANT },
    ]);
  });

  it('say nothing when there is no file (outside the image)', () => {
    expect(read(7)).toEqual({ data: undefined, lines: [] });
  });

  it('refuse a truncated or corrupt file, saying so', () => {
    const truncated = spoiled(2, (t) => t.slice(0, -100));
    expect(truncated.data).toBeUndefined();
    expect(truncated.lines).toEqual([
      `prebuilt: ignoring ${prebuiltFile(dir, retail, 'small', 2)}: its content does not match its checksum (truncated or corrupt); generating instead`,
    ]);
    // One digit changed: still JSON, still the right shape, wrong data.
    const corrupt = spoiled(3, (t) => t.replace('"customer_id":1,', '"customer_id":9,'));
    expect(corrupt.data).toBeUndefined();
    expect(corrupt.lines[0]).toContain('does not match its checksum');
  });

  it('refuse a file made by another generator or format, or for another variant, naming the field', () => {
    const other = spoiled(4, (t) => t.replace(generatorFingerprint(), 'f'.repeat(32)));
    expect(other.data).toBeUndefined();
    expect(other.lines[0]).toContain(
      `generator is "${'f'.repeat(32)}", this image needs "${generatorFingerprint()}"`,
    );
    expect(spoiled(5, (t) => t.replace('{"format":1,', '{"format":0,')).lines[0]).toContain(
      'format is 0, this image needs 1',
    );
    // Variant 0's file under variant 6's name.
    writeFileSync(prebuiltFile(dir, retail, 'small', 6), readFileSync(prebuiltFile(dir, retail, 'small', 0)));
    expect(read(6).lines[0]).toContain('variant is 0, this image needs 6');
  });

  it('refuse a file without a JSON header line', () => {
    expect(spoiled(8, (t) => t.replace('\n', ' ')).lines[0]).toContain(': no header line;');
    expect(spoiled(9, (t) => `{${t}`).lines[0]).toContain(': its header is not JSON;');
  });

  it('report a file that exists but cannot be read', () => {
    const notAFile: PrebuiltDataset = { ...retail, name: 'dir', generate: retail.generate };
    // A directory where the file should be: EISDIR, not "absent".
    writePrebuilt(join(dir, 'dir@1', 'small', '0.json'), retail, 'small', 0);
    const { data, lines } = read(0, notAFile);
    expect(data).toBeUndefined();
    expect(lines[0]).toMatch(
      /^prebuilt: cannot read .*dir@1\/small\/0\.json \(EISDIR.*\); generating instead$/,
    );
  });

  it('are never written from data that JSON would change', () => {
    const withDate: PrebuiltDataset = {
      name: 'dated',
      version: 1,
      generate: () => ({ customers: [{ created_at: new Date(0) }] }) as unknown as RetailData,
    };
    expect(() => writePrebuilt(dir, withDate, 'small', 0)).toThrow(
      'dated@1 small variant 0 does not survive JSON: not prebuilt',
    );
  });

  it("fingerprint the generator's source files", () => {
    expect(generatorFingerprint()).toMatch(/^[0-9a-f]{32}$/);
    expect(generatorFingerprint()).toBe(generatorFingerprint());
  });

  it("declare their rows' SHA-256 in the header, read without the payload (a preloaded database's check)", () => {
    writePrebuilt(dir, retail, 'small', 11);
    expect(prebuiltSha256(dir, retail, 'small', 11)).toBe(
      tablesSha256(retail.generate('small', 11, 'tables')),
    );
    expect(prebuiltSha256(dir, retail, 'small', 12)).toBeUndefined(); // no file
    // Another generator's, another variant's, no header: not this image's, so nothing to compare with.
    writePrebuilt(dir, retail, 'small', 13);
    const file = prebuiltFile(dir, retail, 'small', 13);
    writeFileSync(file, readFileSync(file, 'utf8').replace(generatorFingerprint(), 'f'.repeat(32)));
    expect(prebuiltSha256(dir, retail, 'small', 13)).toBeUndefined();
    writeFileSync(
      prebuiltFile(dir, retail, 'small', 14),
      readFileSync(prebuiltFile(dir, retail, 'small', 11)),
    );
    expect(prebuiltSha256(dir, retail, 'small', 14)).toBeUndefined();
    writeFileSync(prebuiltFile(dir, retail, 'small', 15), 'no header');
    expect(prebuiltSha256(dir, retail, 'small', 15)).toBeUndefined();
  });
});
