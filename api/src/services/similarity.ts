import { createHash } from 'node:crypto';

/**
 * Answers that look alike across candidates of one template: an integrity *signal* for a
 * reviewer, never a reason to reject. MOSS-style (Schleimer, Wilkerson & Aiken, "Winnowing",
 * SIGMOD 2003): answers become token streams in which layout, comments, letter case and the names
 * a candidate chose (aliases, CTE names, output fields) no longer count; k-grams of tokens are
 * hashed and winnowed into fingerprints; two answers' similarity is the Jaccard index of their
 * fingerprint sets.
 *
 * Hand-written: npm has no maintained winnowing library, and a SQL *parser* would refuse the
 * broken or dialect-specific answers candidates submit — a lexer accepts them all.
 */

/** Tokens per k-gram and k-grams per winnowing window (a match shorter than k is noise). */
const K = 5;
const WINDOW = 4;

const SQL_TOKEN =
  /(--[^\n]*|\/\*[\s\S]*?\*\/)|('(?:[^']|'')*')|("(?:[^"]|"")*")|(\d+(?:\.\d+)?(?:e[+-]?\d+)?)|([A-Za-z_][\w$]*)|(::|<>|!=|<=|>=|\|\||[^\s\w])/g;

/** Words that are SQL's own, never a candidate's names. */
const KEYWORDS = new Set(
  `select from where group by order having limit offset join left right full inner outer cross on using as with
  union all intersect except distinct and or not in is null like ilike between case when then else end asc desc
  nulls first last over partition rows range window filter exists any some lateral recursive values true false
  interval cast count sum avg min max rank dense_rank row_number coalesce nullif extract date_trunc`.split(
    /\s+/,
  ),
);

/** Words after which an identifier is the name of a table (or CTE) being read. */
const TABLE_BEFORE = new Set(['from', 'join']);

/** SQL as tokens; the names the candidate invented (aliases, CTE names) as placeholders. */
export function sqlTokens(sql: string): string[] {
  const raw: Array<{ kind: 'word' | 'quoted' | 'other'; text: string }> = [];
  for (const m of sql.matchAll(SQL_TOKEN)) {
    if (m[1]) continue; // a comment
    if (m[5]) raw.push({ kind: 'word', text: m[5].toLowerCase() });
    else if (m[3]) raw.push({ kind: 'quoted', text: m[3].slice(1, -1).replaceAll('""', '"') });
    else raw.push({ kind: 'other', text: (m[2] ?? m[4] ?? m[6])! });
  }
  const isName = (i: number) => raw[i] && raw[i].kind !== 'other' && !KEYWORDS.has(raw[i].text);
  const invented = new Set<string>();
  for (let i = 0; i < raw.length; i++) {
    const t = raw[i]!;
    // `… AS name` (a column or table alias) and `name AS (` (a CTE).
    if (t.text === 'as' && isName(i + 1)) invented.add(raw[i + 1]!.text);
    if (t.text === 'as' && raw[i + 1]?.text === '(' && isName(i - 1)) invented.add(raw[i - 1]!.text);
    // `FROM schema.table alias` / `JOIN table alias`: the word right after the table's name.
    if (TABLE_BEFORE.has(t.text) && isName(i + 1)) {
      let j = i + 1;
      while (raw[j + 1]?.text === '.' && isName(j + 2)) j += 2;
      if (isName(j + 1)) invented.add(raw[j + 1]!.text);
    }
  }
  const placeholder = new Map<string, string>();
  while (raw.at(-1)?.text === ';') raw.pop();
  // `AS` is optional before an alias: with or without it is the same query.
  return raw.flatMap((t) => {
    if (t.kind === 'word' && t.text === 'as') return [];
    if (t.kind === 'other') return t.text;
    if (invented.has(t.text)) {
      if (!placeholder.has(t.text)) placeholder.set(t.text, `§${placeholder.size}`);
      return placeholder.get(t.text)!;
    }
    return KEYWORDS.has(t.text) && t.kind === 'word' ? t.text.toUpperCase() : t.text;
  });
}

/** How deep a pipeline is read (MongoDB refuses documents nested deeper). */
const MAX_DEPTH = 100;

/** Stages whose non-operator keys are fields the candidate names. */
const NAMING_STAGES = new Set(['$group', '$project', '$addFields', '$set', '$bucket', '$facet']);

/** An aggregation pipeline as tokens, the field names it invents as placeholders. */
export function pipelineTokens(text: string): string[] {
  let pipeline: unknown;
  try {
    pipeline = JSON.parse(text);
  } catch {
    return sqlTokens(text); // not JSON: compare it as text, token by token
  }
  const invented = new Set<string>();
  // Walks stop at MAX_DEPTH (MongoDB's own nesting limit): one answer nested 10 000 deep exhausted
  // the stack and took the whole team's similarity report down with it.
  const collect = (v: unknown, stage: string | undefined, depth: number) => {
    if (depth > MAX_DEPTH) return;
    if (Array.isArray(v)) for (const x of v) collect(x, stage, depth + 1);
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        if (stage && NAMING_STAGES.has(stage) && !k.startsWith('$') && k !== '_id') invented.add(k);
        collect(x, k.startsWith('$') ? k : undefined, depth + 1);
      }
  };
  collect(pipeline, undefined, 0);
  const placeholder = new Map<string, string>();
  const name = (s: string) => {
    if (!invented.has(s)) return s;
    if (!placeholder.has(s)) placeholder.set(s, `§${placeholder.size}`);
    return placeholder.get(s)!;
  };
  const out: string[] = [];
  const walk = (v: unknown, depth: number) => {
    if (depth > MAX_DEPTH) out.push('…');
    else if (Array.isArray(v)) {
      out.push('[');
      for (const x of v) walk(x, depth + 1);
      out.push(']');
    } else if (v && typeof v === 'object') {
      out.push('{');
      // Key order is the candidate's choice too.
      for (const [k, x] of Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) {
        out.push(name(k), ':');
        walk(x, depth + 1);
      }
      out.push('}');
    } else if (typeof v === 'string' && v.startsWith('$') && !v.startsWith('$$'))
      out.push(`$${name(v.slice(1).split('.')[0]!)}${v.includes('.') ? v.slice(v.indexOf('.')) : ''}`);
    else out.push(JSON.stringify(v));
  };
  walk(pipeline, 0);
  return out;
}

/** Winnowed fingerprints of a token stream: the minimum k-gram hash of each window. */
export function fingerprints(tokens: string[]): Set<string> {
  const hashes: string[] = [];
  for (let i = 0; i + K <= tokens.length; i++)
    hashes.push(
      createHash('sha1')
        .update(tokens.slice(i, i + K).join('\u0001'))
        .digest('hex')
        .slice(0, 12),
    );
  if (hashes.length === 0) return new Set(tokens.length ? [tokens.join('\u0001')] : []);
  const kept = new Set<string>();
  for (let i = 0; i + WINDOW <= Math.max(hashes.length, WINDOW); i++) {
    const window = hashes.slice(i, i + WINDOW);
    kept.add(window.reduce((a, b) => (b < a ? b : a)));
  }
  return kept;
}

/** Jaccard index of two fingerprint sets, 0–1. */
export function similarity(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 || b.size === 0) return 0;
  let shared = 0;
  for (const x of a) if (b.has(x)) shared++;
  return shared / (a.size + b.size - shared);
}

export interface AnswerForComparison {
  assessment: string;
  candidate: string;
  template: string;
  task: string;
  kind: 'sql' | 'pipeline';
  answer: string;
}

export interface SimilarPair {
  template: string;
  task: string;
  a: { assessment: string; candidate: string };
  b: { assessment: string; candidate: string };
  /** 0–1: the share of fingerprints the two answers have in common. */
  similarity: number;
}

/** Default threshold: renamed and reformatted copies score 1; independent solutions well under. */
export const SIMILARITY_THRESHOLD = 0.6;

/**
 * Pure: the pairs of answers to the same task, from different assessments, at or above
 * `threshold`, most similar first. Each assessment contributes its latest answer per task.
 */
export function similarPairs(
  answers: AnswerForComparison[],
  threshold = SIMILARITY_THRESHOLD,
): SimilarPair[] {
  const latest = new Map<string, AnswerForComparison>();
  for (const a of answers) latest.set(`${a.template}\u0000${a.task}\u0000${a.assessment}`, a); // callers pass them in time order
  const byTask = new Map<string, Array<AnswerForComparison & { prints: Set<string> }>>();
  for (const a of latest.values()) {
    const prints = fingerprints(a.kind === 'pipeline' ? pipelineTokens(a.answer) : sqlTokens(a.answer));
    const key = `${a.template}\u0000${a.task}`;
    byTask.set(key, [...(byTask.get(key) ?? []), { ...a, prints }]);
  }
  const pairs: SimilarPair[] = [];
  for (const list of byTask.values())
    for (let i = 0; i < list.length; i++)
      for (let j = i + 1; j < list.length; j++) {
        const s = similarity(list[i]!.prints, list[j]!.prints);
        if (s >= threshold)
          pairs.push({
            template: list[i]!.template,
            task: list[i]!.task,
            a: { assessment: list[i]!.assessment, candidate: list[i]!.candidate },
            b: { assessment: list[j]!.assessment, candidate: list[j]!.candidate },
            similarity: Math.round(s * 100) / 100,
          });
      }
  return pairs.sort((x, y) => y.similarity - x.similarity || x.task.localeCompare(y.task));
}
