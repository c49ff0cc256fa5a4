import { describe, expect, it } from 'vitest';
import { findExercise } from '../../../sandboxes/src/exercises/index.ts';
import {
  type AnswerForComparison,
  fingerprints,
  pipelineTokens,
  SIMILARITY_THRESHOLD,
  similarity,
  similarPairs,
  sqlTokens,
} from './similarity.ts';

const reference = findExercise('rank-customers-by-country').reference;
/** The reference, copied: other aliases and CTE names, other case, other layout, a comment. */
const disguised = `-- my own work
with S1 as (select CUST.country, CUST.customer_id, sum(X.amount) as total_spend
from retail.transactions as X join retail.accounts ACC on ACC.account_id = X.account_id
join retail.customers CUST on CUST.customer_id = ACC.customer_id
where X.kind = 'card' and X.direction = 'debit' group by CUST.country, CUST.customer_id),
R2 as (select country, customer_id, total_spend,
  rank() over (partition by country order by total_spend desc) as spend_rank from S1)
select country, customer_id, total_spend, spend_rank from R2 where spend_rank <= 3
order by country, spend_rank, customer_id;`;
/** Another correct solution: one subquery, USING joins, positional ORDER BY. */
const independent = `SELECT country, customer_id, total_spend, spend_rank FROM (
  SELECT cu.country, cu.customer_id, SUM(tx.amount) total_spend,
         RANK() OVER (PARTITION BY cu.country ORDER BY SUM(tx.amount) DESC) spend_rank
  FROM retail.customers cu
  JOIN retail.accounts ac USING (customer_id)
  JOIN retail.transactions tx USING (account_id)
  WHERE tx.kind = 'card' AND tx.direction = 'debit'
  GROUP BY cu.country, cu.customer_id
) r WHERE spend_rank <= 3 ORDER BY 1, 4, 2`;

const sim = (x: string[], y: string[]) => similarity(fingerprints(x), fingerprints(y));

describe('sqlTokens', () => {
  it('drops layout, comments and case, and names aliases and CTEs by order of appearance', () => {
    expect(sqlTokens('select T.a  AS total -- why\nFROM retail.orders T')).toEqual([
      'SELECT',
      '§0',
      '.',
      'a',
      '§1',
      'FROM',
      'retail',
      '.',
      'orders',
      '§0',
    ]);
    expect(sqlTokens(reference)).toEqual(sqlTokens(disguised));
  });
  it('keeps literals and quoted names as written', () => {
    expect(sqlTokens(`SELECT 'Card', "Mixed Case" FROM x`)).toEqual([
      'SELECT',
      "'Card'",
      ',',
      'Mixed Case',
      'FROM',
      'x',
    ]);
  });
});

describe('pipelineTokens', () => {
  it('names the fields a pipeline invents by order of appearance, whatever the key order', () => {
    const mine =
      '[{"$group": {"_id": "$device", "sessions": {"$sum": 1}}}, {"$sort": {"sessions": -1, "_id": 1}}]';
    const theirs =
      '[ { "$group": { "n": { "$sum": 1 }, "_id": "$device" } }, { "$sort": { "_id": 1, "n": -1 } } ]';
    expect(pipelineTokens(mine)).toEqual(pipelineTokens(theirs));
    expect(pipelineTokens(mine)).not.toEqual(pipelineTokens(mine.replace('$device', '$app_version')));
  });
  it('reads an answer nested 10 000 deep without exhausting the stack (it took the team’s report down)', () => {
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const tokens = pipelineTokens(deep);
    expect(tokens.length).toBeGreaterThan(100);
    expect(tokens).toContain('…');
  });

  it('compares text that is not JSON token by token', () => {
    expect(pipelineTokens('db.sessions.find()')).toEqual(['db', '.', 'sessions', '.', 'find', '(', ')']);
  });
});

describe('similarity', () => {
  it('is 1 for a disguised copy and under the threshold for an independent solution', () => {
    expect(sim(sqlTokens(reference), sqlTokens(disguised))).toBe(1);
    const other = sim(sqlTokens(reference), sqlTokens(independent));
    expect(other).toBeLessThan(SIMILARITY_THRESHOLD);
    expect(other).toBeGreaterThan(0); // the same tables and columns: some overlap, as expected
  });
  it('is 0 when either answer is empty', () => {
    expect(sim([], sqlTokens(reference))).toBe(0);
  });
});

describe('similarPairs', () => {
  const answer = (
    assessment: string,
    answer: string,
    task = 'rank-customers-by-country',
  ): AnswerForComparison => ({
    assessment,
    candidate: assessment.toUpperCase(),
    template: 'data-engineer',
    task,
    kind: 'sql',
    answer,
  });
  it('flags the copy, not the independent solution, comparing each assessment’s latest answer per task', () => {
    const pairs = similarPairs([
      answer('ada', 'SELECT 1'),
      answer('ada', reference), // ada's latest
      answer('bob', disguised),
      answer('eve', independent),
      answer('eve', reference, 'another-task'), // another task: not compared with ada's
    ]);
    expect(pairs).toEqual([
      {
        template: 'data-engineer',
        task: 'rank-customers-by-country',
        a: { assessment: 'ada', candidate: 'ADA' },
        b: { assessment: 'bob', candidate: 'BOB' },
        similarity: 1,
      },
    ]);
  });
});
