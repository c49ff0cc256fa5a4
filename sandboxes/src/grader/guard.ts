import type pg from 'pg';

/**
 * What a check may read of the candidate's `work`. A check runs as the grader on objects the
 * candidate made, and PostgreSQL runs a reader's code for them with the reader's rights: a view's
 * query, a cast or an operator of their own type, a collation that makes 'A' equal 'a'. That code could read what the grader may (another grader
 * session's query in pg_stat_activity) or show the grader other rows than are there (a view
 * filtering on current_user), so a check could pass on work not done. A check therefore reads
 * data only:
 * - names resolve with `search_path = pg_catalog, pg_temp` (set by the caller): no function or
 *   operator of the candidate's is picked up, whatever its signature (an exact match for
 *   varchar would win over pg_catalog's text one if `work` were on the path);
 * - every relation the query reads outside pg_catalog and information_schema must hold data (a
 *   table, partitioned table, materialized view or sequence: no view, no foreign table), and each
 *   column a built-in type (pg_catalog's, or a domain over one: a domain brings no operator or cast
 *   of its own) and a built-in collation.
 * Operator classes (what GROUP BY and DISTINCT use) take a superuser to create, so the built-in
 * types keep the built-in ones. Triggers, rules other than a view's, defaults and CHECK
 * constraints do not run on a read; row-level security is refused by `row_security = off`; a
 * virtual generated column (PostgreSQL 18) may use only built-in functions and types, PostgreSQL's
 * own rule for this very reason.
 *
 * The relations are the ones the query's parse locks: PREPARE parses and rewrites it (a view is
 * locked before it is expanded) without planning or running anything, and the locks, held to the
 * end of the transaction, keep the candidate from swapping a checked table for a view before the
 * query runs.
 */

/** Put before the check's query to parse it; a parse error's position is shifted back by its length. */
export const GUARD_PREFIX = 'PREPARE epreuve_check AS ';

/** Why a check does not run: the object at fault, in English and French. */
export interface Refusal {
  en: string;
  fr: string;
}

/**
 * Where the seeder puts the one lock function the grader may call: the relations its own session
 * has locked in this database (not `pg_locks`, which shows every session's, every database's).
 */
export const OWN_LOCKS_SCHEMA = 'epreuve_guard';
export const OWN_RELATION_LOCKS = `${OWN_LOCKS_SCHEMA}.own_relation_locks`;

const INSPECT = `
WITH RECURSIVE rels AS (
  SELECT DISTINCT c.oid, c.relkind, pg_catalog.format('%I.%I', n.nspname, c.relname) AS name
  FROM ${OWN_RELATION_LOCKS}() AS l(relation)
  JOIN pg_catalog.pg_class c ON c.oid = l.relation
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
), cols AS (
  SELECT r.name AS rel, a.attnum, a.attname::text AS col, a.atttypid, a.attcollation
  FROM rels r JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid
  WHERE a.attnum > 0 AND NOT a.attisdropped
), base (typ, cur) AS (
  -- a domain's base type, however many domains deep
  SELECT DISTINCT atttypid, atttypid FROM cols
  UNION ALL
  SELECT b.typ, t.typbasetype FROM base b JOIN pg_catalog.pg_type t ON t.oid = b.cur WHERE t.typtype = 'd'
)
SELECT * FROM (
  SELECT 1 AS rank, r.name AS rel, NULL::int AS attnum, NULL AS col, r.relkind::text AS what FROM rels r
  WHERE r.relkind NOT IN ('r', 'p', 'm', 'S', 'i', 'I')
  UNION ALL
  SELECT 2, c.rel, c.attnum, c.col, pg_catalog.format_type(c.atttypid, NULL) FROM cols c
  WHERE EXISTS (
    SELECT FROM base b JOIN pg_catalog.pg_type t ON t.oid = b.cur
    WHERE b.typ = c.atttypid AND t.typtype <> 'd' AND t.typnamespace <> 'pg_catalog'::pg_catalog.regnamespace)
  UNION ALL
  SELECT 3, c.rel, c.attnum, c.col, pg_catalog.format('%I.%I', n.nspname, co.collname) FROM cols c
  JOIN pg_catalog.pg_collation co ON co.oid = c.attcollation
  JOIN pg_catalog.pg_namespace n ON n.oid = co.collnamespace
  WHERE n.nspname <> 'pg_catalog'
) AS wrong
ORDER BY rank, rel, attnum
LIMIT 1`;

/** pg_class.relkind of what a check may not read, in words. */
const KINDS: Record<string, [string, string]> = {
  v: ['a view', 'une vue'],
  f: ['a foreign table', 'une table étrangère'],
};

/**
 * Parses the check's `query` in the caller's (read-only) transaction and returns why it may not
 * run, or undefined. A parse error is thrown as PostgreSQL's (its position after GUARD_PREFIX).
 */
export async function findCandidateCode(client: pg.Client, query: string): Promise<Refusal | undefined> {
  // Extended protocol: one statement only, as for the cursor that runs it next.
  await client.query({ text: GUARD_PREFIX + query, queryMode: 'extended' } as pg.QueryConfig);
  const found = await client.query<{ rank: number; rel: string; col: string | null; what: string | null }>(
    INSPECT,
  );
  await client.query('DEALLOCATE epreuve_check');
  const w = found.rows[0];
  if (!w) return undefined;
  const column = `${w.rel}.${w.col}`;
  switch (w.rank) {
    case 1: {
      // 'v' and 'f' are what a query can read that is not one of the kinds allowed above.
      const [en, fr] = KINDS[w.what ?? ''] ?? [`relation of kind ${w.what}`, `relation de type ${w.what}`];
      return {
        en: `${w.rel} is ${en}: checks read tables only (a view's query would run as the grader); load the data into a table`,
        fr: `${w.rel} est ${fr} : les vérifications ne lisent que des tables (la requête d’une vue s’exécuterait avec le rôle de correction) ; chargez les données dans une table`,
      };
    }
    case 2:
      return {
        en: `column ${column} has type ${w.what}, not a built-in type of PostgreSQL: checks read built-in types only (text, bigint, numeric, timestamptz…, or a domain over one), as a type of your own brings its own casts and operators`,
        fr: `la colonne ${column} est de type ${w.what}, qui n’est pas un type intégré de PostgreSQL : les vérifications ne lisent que des types intégrés (text, bigint, numeric, timestamptz…, ou un domaine sur l’un d’eux), car un type à vous apporte ses propres conversions et opérateurs`,
      };
    default:
      return {
        en: `column ${column} uses collation ${w.what}, not a built-in one: checks compare text with PostgreSQL's built-in collations only`,
        fr: `la colonne ${column} utilise la collation ${w.what}, qui n’est pas intégrée : les vérifications ne comparent du texte qu’avec les collations intégrées de PostgreSQL`,
      };
  }
}
