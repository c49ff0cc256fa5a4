import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

/**
 * Bulk loads rows with `COPY … FROM STDIN` (text format) through pg-copy-streams: one statement
 * per table streamed in chunks, instead of one parsed and planned `INSERT` per thousand rows.
 * On the standard retail dataset this is what brings the PostgreSQL seed from seconds to well
 * under one (test/integration/seeder-copy.test.ts measures both and checks the data is the same).
 */

/** Rows per chunk written to the COPY stream: large enough to amortise, small enough to stream. */
const CHUNK_ROWS = 2000;

/**
 * One value in COPY's text format. NULL is `\N`; a backslash, tab, newline or carriage return in
 * the data is escaped so it can't end a field or a row. The server parses the text exactly as it
 * parses a text-format bind parameter, so a value loads as it would through `INSERT … $1`.
 */
export function copyField(value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'bigint') {
    if (typeof value === 'number' && !Number.isFinite(value))
      throw new Error(`cannot COPY the number ${value}: only finite numbers are data`);
    text = String(value);
  } else if (typeof value === 'boolean') text = value ? 't' : 'f';
  else if (value instanceof Date) text = value.toISOString();
  else throw new Error(`cannot COPY a value of type ${typeof value}: ${JSON.stringify(value)}`);
  // Most values need no escape; testing first skips building a new string for them.
  return SPECIAL.test(text) ? text.replace(SPECIALS, (c) => ESCAPES[c]!) : text;
}

const SPECIAL = /[\\\t\n\r]/;
const SPECIALS = /[\\\t\n\r]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** One row of COPY text: fields in `columns` order, tab separated, newline terminated. */
export function copyLine(item: Record<string, unknown>, columns: readonly string[]): string {
  return `${columns.map((c) => copyField(item[c])).join('\t')}\n`;
}

function* chunks(items: ReadonlyArray<Record<string, unknown>>, columns: readonly string[]) {
  for (let i = 0; i < items.length; i += CHUNK_ROWS) {
    let chunk = '';
    for (const item of items.slice(i, i + CHUNK_ROWS)) chunk += copyLine(item, columns);
    yield chunk;
  }
}

const ident = pg.escapeIdentifier;

/**
 * Loads `items` into `schema.table` with COPY on an open client (inside its transaction if one is
 * open). Returns the row count the server reports; a value the column type rejects fails the
 * whole COPY with the server's message, naming the table.
 */
export async function copyRows(
  client: pg.Client,
  schema: string,
  table: string,
  columns: readonly string[],
  items: ReadonlyArray<Record<string, unknown>>,
): Promise<number> {
  const sql = `COPY ${ident(schema)}.${ident(table)} (${columns.map(ident).join(', ')}) FROM STDIN`;
  const sink = client.query(copyFrom(sql));
  try {
    await pipeline(Readable.from(chunks(items, columns)), sink);
  } catch (err) {
    throw new Error(`COPY into ${schema}.${table} failed: ${(err as Error).message}`);
  }
  return Number(sink.rowCount);
}

/**
 * Runs `load` with the schema's foreign keys and secondary indexes dropped, then puts them back
 * exactly as they were (same names, from pg_get_constraintdef / pg_get_indexdef). Checking a
 * foreign key row by row and updating an index per row is most of a COPY's time; re-adding the
 * key checks every row in one join, so nothing the load wrote goes unchecked. Primary keys and
 * unique constraints stay: foreign keys need them, and they catch a duplicate as it is loaded.
 * Meant for a transaction that created the schema: the drops are invisible to anyone else.
 */
export async function withConstraintsDeferred<T>(
  client: pg.Client,
  schema: string,
  load: () => Promise<T>,
): Promise<T> {
  const fks = (
    await client.query<{ tbl: string; name: string; def: string }>(
      `SELECT conrelid::regclass::text AS tbl, conname AS name, pg_get_constraintdef(oid) AS def
         FROM pg_constraint WHERE contype = 'f' AND connamespace = $1::regnamespace ORDER BY oid`,
      [schema],
    )
  ).rows;
  const indexes = (
    await client.query<{ name: string; def: string }>(
      `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relnamespace = $1::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
        ORDER BY i.indexrelid`,
      [schema],
    )
  ).rows;
  for (const fk of fks) await client.query(`ALTER TABLE ${fk.tbl} DROP CONSTRAINT ${ident(fk.name)}`);
  for (const ix of indexes) await client.query(`DROP INDEX ${ix.name}`);
  const result = await load();
  for (const ix of indexes) await client.query(ix.def);
  for (const fk of fks)
    await client.query(`ALTER TABLE ${fk.tbl} ADD CONSTRAINT ${ident(fk.name)} ${fk.def}`);
  return result;
}
