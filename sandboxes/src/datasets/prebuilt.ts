/**
 * Generated tables shipped in the sandboxes image. Generating `retail@1` standard is about a
 * second of CPU on an idle core, and the seed Job (500m, twice: the candidate's tables and the data
 * API's copy) and the data API (250m) both did it on the way to Ready. The generator is
 * deterministic and every (dataset, size, variant) they ask for at that size is fixed, so the
 * image build writes those tables to files (`epreuve-sandbox prebuild`) and the processes read
 * them instead: a JSON parse, several times cheaper than generating.
 *
 * A file is used only when it is exactly what this image's generator returns: its header names the
 * format, the dataset, size, variant and scope, a fingerprint of the generator's source and the
 * payload's SHA-256. Anything else (missing, truncated, corrupt, made by another generator) falls
 * back to generating, with a line saying why: slower, never wrong data.
 */
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import { DATA_API_VARIANT } from '@epreuve/crds';
import { SOURCE_URL as RANDOM_SOURCE } from './random.ts';
import { SOURCE_URL as RETAIL_SOURCE, type RetailData, type Size } from './retail/v1.ts';

/** Where the image keeps its prebuilt files (set by the Dockerfile's sandboxes stage). */
export const PREBUILT_DIR_ENV = 'EPREUVE_PREBUILT_DIR';

/** Bump when the file layout changes: older files are then refused, not misread. */
const FORMAT = 1;

/** What `prebuild` writes: what the seed Job and the data API ask for at the standard size. */
export const PREBUILT_VARIANTS: ReadonlyArray<{ size: Size; variant: number }> = [
  { size: 'standard', variant: 0 }, // the candidate's tables
  { size: 'standard', variant: DATA_API_VARIANT }, // the data API's, and the seeder's copy for checks
];
// Not the small sizes (hidden variants, small assessments): ~10 ms each to generate.

/** Only what prebuilt.ts needs of a dataset (catalog.ts's Dataset fits). */
export interface PrebuiltDataset {
  name: string;
  version: number;
  generate(size: Size, variant: number, scope: 'tables'): RetailData;
}

interface Header {
  format: number;
  dataset: string;
  size: Size;
  variant: number;
  scope: 'tables';
  generator: string;
  sha256: string;
}

let fingerprint: string | undefined;

/**
 * A hash of the generator's modules as this process loaded them. `import.meta.url` of each: the
 * `.ts` sources today, the bundle if the image ships one (then the whole bundle is hashed, which
 * the build made the files with too).
 */
export function generatorFingerprint(): string {
  if (!fingerprint) {
    const hash = createHash('sha256');
    for (const url of new Set([RETAIL_SOURCE, RANDOM_SOURCE])) hash.update(readFileSync(fileURLToPath(url)));
    fingerprint = hash.digest('hex').slice(0, 32);
  }
  return fingerprint;
}

export function prebuiltFile(dir: string, d: PrebuiltDataset, size: Size, variant: number): string {
  return join(dir, `${d.name}@${d.version}`, size, `${variant}.json`);
}

const headerOf = (d: PrebuiltDataset, size: Size, variant: number, sha256: string): Header => ({
  format: FORMAT,
  dataset: `${d.name}@${d.version}`,
  size,
  variant,
  scope: 'tables',
  generator: generatorFingerprint(),
  sha256,
});

const sha256Of = (payload: string | Buffer) => createHash('sha256').update(payload).digest('hex');

/**
 * The SHA-256 of generated tables as a prebuilt file's header records it (of their JSON): the
 * PostgreSQL image's preloaded databases (hack/images/postgres/preload.ts) record it too, and the
 * seeder compares the two to know the preloaded rows are the ones it would load.
 */
export const tablesSha256 = (data: RetailData): string => sha256Of(JSON.stringify(data));

/**
 * The payload SHA-256 the prebuilt file of `d` at `size` and `variant` declares, read from its
 * header line only (no 24 MB read and parse), or undefined when there is no such file or its header
 * is not this image's format and generator. Trusts the header: the file was written by this image's
 * build (readPrebuilt, which loads the data, checks the payload against it).
 */
export function prebuiltSha256(
  dir: string,
  d: PrebuiltDataset,
  size: Size,
  variant: number,
): string | undefined {
  let head: string;
  try {
    const fd = openSync(prebuiltFile(dir, d, size, variant), 'r');
    try {
      const buf = Buffer.alloc(4096);
      head = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const newline = head.indexOf('\n');
  if (newline < 0) return undefined;
  let header: Partial<Header>;
  try {
    header = JSON.parse(head.slice(0, newline));
  } catch {
    return undefined;
  }
  const want = headerOf(d, size, variant, header.sha256 ?? '');
  const usable = (Object.keys(want) as Array<keyof Header>).every((k) => header[k] === want[k]);
  return usable && typeof header.sha256 === 'string' && /^[0-9a-f]{64}$/.test(header.sha256)
    ? header.sha256
    : undefined;
}

/**
 * Generates and writes one file: a JSON header line, then the tables as JSON. Refuses to write
 * data that would not read back exactly (a Date or an undefined field would not survive JSON).
 */
export function writePrebuilt(dir: string, d: PrebuiltDataset, size: Size, variant: number): string {
  const data = d.generate(size, variant, 'tables');
  const payload = JSON.stringify(data);
  if (!isDeepStrictEqual(JSON.parse(payload), data))
    throw new Error(`${d.name}@${d.version} ${size} variant ${variant} does not survive JSON: not prebuilt`);
  const sha256 = sha256Of(payload);
  const file = prebuiltFile(dir, d, size, variant);
  mkdirSync(dirname(file), { recursive: true });
  // Written whole then renamed: a build interrupted midway leaves no half file under the name.
  writeFileSync(`${file}.tmp`, `${JSON.stringify(headerOf(d, size, variant, sha256))}\n${payload}`);
  renameSync(`${file}.tmp`, file);
  return file;
}

/**
 * The prebuilt tables of `d` at `size` and `variant`, or undefined (then generate): no file is
 * normal outside the image and says nothing; an unusable file logs why.
 */
export function readPrebuilt(
  dir: string,
  d: PrebuiltDataset,
  size: Size,
  variant: number,
  log: (line: string) => void,
): RetailData | undefined {
  const file = prebuiltFile(dir, d, size, variant);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      log(`prebuilt: cannot read ${file} (${(err as Error).message}); generating instead`);
    return undefined;
  }
  const refuse = (why: string) => {
    log(`prebuilt: ignoring ${file}: ${why}; generating instead`);
    return undefined;
  };
  const newline = bytes.indexOf(0x0a);
  if (newline < 0) return refuse('no header line');
  let header: Partial<Header>;
  try {
    header = JSON.parse(bytes.subarray(0, newline).toString('utf8'));
  } catch {
    return refuse('its header is not JSON');
  }
  // Hashed and parsed from the file's own bytes: no copy of 24 MB beside the seed Job's 256 Mi.
  const payload = bytes.subarray(newline + 1);
  const want = headerOf(d, size, variant, sha256Of(payload));
  for (const key of Object.keys(want) as Array<keyof Header>)
    if (header[key] !== want[key])
      return refuse(
        key === 'sha256'
          ? 'its content does not match its checksum (truncated or corrupt)'
          : `${key} is ${JSON.stringify(header[key])}, this image needs ${JSON.stringify(want[key])}`,
      );
  return JSON.parse(payload.toString('utf8')) as RetailData;
}
