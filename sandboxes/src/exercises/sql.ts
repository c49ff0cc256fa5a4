import type { Exercise } from './types.ts';

const g = (orderMatters: boolean, numericTolerance = 0.005, ignoreColumnNames = false) => ({
  orderMatters,
  numericTolerance,
  ignoreColumnNames,
});
const schemaNote = {
  en: 'The dataset is in schema `retail` (`retail.customers`, `retail.accounts`, `retail.merchants`, `retail.transactions`, `retail.exchange_rates`).',
  fr: 'Les données sont dans le schéma `retail` (`retail.customers`, `retail.accounts`, `retail.merchants`, `retail.transactions`, `retail.exchange_rates`).',
};
const p = (en: string, fr: string) => ({ en: `${en}\n\n${schemaNote.en}`, fr: `${fr}\n\n${schemaNote.fr}` });

/** SQL exercises on retail@1 — the take-home's RANK, COALESCE, INTERSECT and JOINs, and more. */
export const SQL_EXERCISES: Exercise[] = [
  {
    id: 'rank-customers-by-country',
    kind: 'sql',
    dataset: 'retail',
    difficulty: 'medium',
    topics: ['RANK', 'window functions', 'JOIN'],
    title: { en: 'Top spenders per country', fr: 'Meilleurs clients par pays' },
    prompt: p(
      'Rank customers by the total amount of their **card** debits within their country (use `RANK()`, highest spend first). Amounts are in the account currency; count them as they are. Return the top 3 ranks of each country: `country`, `customer_id`, `total_spend`, `spend_rank`, ordered by country, rank, then customer id.',
      'Classez les clients par montant total de leurs débits **carte** au sein de leur pays (avec `RANK()`, plus grosse dépense en premier). Les montants sont dans la devise du compte ; additionnez-les tels quels. Renvoyez les 3 premiers rangs de chaque pays : `country`, `customer_id`, `total_spend`, `spend_rank`, triés par pays, rang puis identifiant client.',
    ),
    reference: `WITH spend AS (
  SELECT c.country, c.customer_id, SUM(t.amount) AS total_spend
  FROM retail.transactions t
  JOIN retail.accounts a ON a.account_id = t.account_id
  JOIN retail.customers c ON c.customer_id = a.customer_id
  WHERE t.kind = 'card' AND t.direction = 'debit'
  GROUP BY c.country, c.customer_id
), ranked AS (
  SELECT country, customer_id, total_spend, RANK() OVER (PARTITION BY country ORDER BY total_spend DESC) AS spend_rank
  FROM spend
)
SELECT country, customer_id, total_spend, spend_rank FROM ranked WHERE spend_rank <= 3
ORDER BY country, spend_rank, customer_id`,
    grader: g(true),
    wrongAnswers: [
      {
        answer: `SELECT c.country, c.customer_id, SUM(t.amount) AS total_spend, RANK() OVER (ORDER BY SUM(t.amount) DESC) AS spend_rank
FROM retail.transactions t JOIN retail.accounts a USING (account_id) JOIN retail.customers c USING (customer_id)
WHERE t.kind = 'card' GROUP BY c.country, c.customer_id ORDER BY 1, 4, 2 LIMIT 15`,
        explains: /row/,
      },
      { answer: 'SELECT country, customer_id FROM retail.customers LIMIT 3', explains: /columns?/ },
    ],
  },
  {
    id: 'dense-rank-merchants',
    kind: 'sql',
    dataset: 'retail',
    difficulty: 'medium',
    topics: ['DENSE_RANK', 'window functions'],
    title: { en: 'Busiest merchants per category', fr: 'Commerçants les plus actifs par catégorie' },
    prompt: p(
      'For every merchant **with** a category, count its card transactions and give it a `DENSE_RANK()` within its category by that count (most first). Return `category`, `merchant_id`, `transactions`, `category_rank` for ranks 1 and 2 only. Order does not matter.',
      'Pour chaque commerçant **ayant** une catégorie, comptez ses transactions carte et attribuez un `DENSE_RANK()` dans sa catégorie selon ce nombre (le plus grand d’abord). Renvoyez `category`, `merchant_id`, `transactions`, `category_rank` pour les rangs 1 et 2 seulement. L’ordre est libre.',
    ),
    reference: `SELECT category, merchant_id, transactions, category_rank FROM (
  SELECT m.category, m.merchant_id, COUNT(*) AS transactions,
         DENSE_RANK() OVER (PARTITION BY m.category ORDER BY COUNT(*) DESC) AS category_rank
  FROM retail.merchants m JOIN retail.transactions t ON t.merchant_id = m.merchant_id
  WHERE t.kind = 'card' AND m.category IS NOT NULL
  GROUP BY m.category, m.merchant_id
) r WHERE category_rank <= 2`,
    grader: g(false),
    wrongAnswers: [
      {
        answer: `SELECT category, merchant_id, transactions, category_rank FROM (
  SELECT m.category, m.merchant_id, COUNT(*) AS transactions,
         DENSE_RANK() OVER (PARTITION BY m.category ORDER BY COUNT(*) DESC) AS category_rank
  FROM retail.merchants m JOIN retail.transactions t ON t.merchant_id = m.merchant_id
  WHERE t.kind = 'card' GROUP BY m.category, m.merchant_id) r WHERE category_rank <= 2`,
        explains: /extra row.*NULL/,
      },
      {
        answer: `SELECT m.category, m.merchant_id, COUNT(*) AS transactions, 1 AS category_rank FROM retail.merchants m JOIN retail.transactions t USING (merchant_id) GROUP BY 1, 2`,
        explains: /row/,
      },
    ],
  },
  {
    id: 'latest-transaction-per-account',
    kind: 'sql',
    dataset: 'retail',
    difficulty: 'easy',
    topics: ['ROW_NUMBER', 'window functions'],
    title: { en: 'Latest movement of each account', fr: 'Dernier mouvement de chaque compte' },
    prompt: p(
      'For each account, return its most recent transaction by `booked_at` (ties broken by the highest `transaction_id`): `account_id`, `transaction_id`, `booked_at`. Careful: ids follow ingestion order, not booking time. Order does not matter.',
      'Pour chaque compte, renvoyez sa transaction la plus récente selon `booked_at` (en cas d’égalité, le plus grand `transaction_id`) : `account_id`, `transaction_id`, `booked_at`. Attention : les identifiants suivent l’ordre d’ingestion, pas la date de comptabilisation. L’ordre est libre.',
    ),
    reference: `SELECT account_id, transaction_id, booked_at FROM (
  SELECT account_id, transaction_id, booked_at,
         ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY booked_at DESC, transaction_id DESC) AS rn
  FROM retail.transactions
) t WHERE rn = 1`,
    grader: g(false),
    wrongAnswers: [
      {
        answer:
          'SELECT account_id, MAX(transaction_id) AS transaction_id, MAX(booked_at) AS booked_at FROM retail.transactions GROUP BY account_id',
        explains: /wrong values: transaction_id/,
      },
      { answer: 'SELECT account_id, transaction_id FROM retail.transactions LIMIT 10', explains: /column/ },
    ],
  },
  {
    id: 'coalesce-merchant-category',
    kind: 'sql',
    dataset: 'retail',
    difficulty: 'easy',
    topics: ['COALESCE', 'NULL', 'GROUP BY'],
    title: { en: 'Spend by merchant category', fr: 'Dépenses par catégorie de commerçant' },
    prompt: p(
      'Total card debit amounts by merchant category. Merchants without a category must appear under `uncategorised` (use `COALESCE`). Return `category`, `total`, ordered by `total` descending.',
      'Totalisez les débits carte par catégorie de commerçant. Les commerçants sans catégorie doivent apparaître sous `uncategorised` (avec `COALESCE`). Renvoyez `category`, `total`, triés par `total` décroissant.',
    ),
    reference: `SELECT COALESCE(m.category, 'uncategorised') AS category, SUM(t.amount) AS total
FROM retail.transactions t JOIN retail.merchants m ON m.merchant_id = t.merchant_id
WHERE t.kind = 'card' AND t.direction = 'debit'
GROUP BY 1 ORDER BY total DESC`,
    grader: g(true),
    wrongAnswers: [
      {
        answer: `SELECT m.category, SUM(t.amount) AS total FROM retail.transactions t JOIN retail.merchants m USING (merchant_id)
WHERE t.kind = 'card' AND t.direction = 'debit' GROUP BY 1 ORDER BY total DESC`,
        explains: /uncategorised|NULL/,
      },
      {
        answer: `SELECT COALESCE(m.category, 'uncategorised') AS category, SUM(t.amount) AS total FROM retail.transactions t JOIN retail.merchants m USING (merchant_id)
WHERE t.kind = 'card' AND t.direction = 'debit' GROUP BY 1 ORDER BY total ASC`,
        explains: /order/,
      },
    ],
  },
  {
    id: 'customers-without-email',
    kind: 'sql',
    dataset: 'retail',
    difficulty: 'easy',
    topics: ['NULL', 'IS NULL', 'COUNT'],
    title: { en: 'Who cannot be emailed?', fr: 'Qui ne peut pas être contacté par e-mail ?' },
    prompt: p(
      'Per country, count customers and customers without an email address. Return `country`, `customers`, `without_email`, ordered by country. (`COUNT(email)` skips NULLs — use that, or a `FILTER`.)',
      'Par pays, comptez les clients et les clients sans adresse e-mail. Renvoyez `country`, `customers`, `without_email`, triés par pays. (`COUNT(email)` ignore les NULL — servez-vous-en, ou d’un `FILTER`.)',
    ),
    reference: `SELECT country, COUNT(*) AS customers, COUNT(*) - COUNT(email) AS without_email
FROM retail.customers GROUP BY country ORDER BY country`,
    grader: g(true),
    wrongAnswers: [
      {
        answer:
          "SELECT country, COUNT(*) AS customers, COUNT(*) FILTER (WHERE email = '') AS without_email FROM retail.customers GROUP BY country ORDER BY country",
        explains: /without_email/,
      },
      {
        answer:
          'SELECT country, COUNT(email) AS customers, 0 AS without_email FROM retail.customers GROUP BY country ORDER BY country',
        explains: /customers/,
      },
    ],
  },
  {
    id: 'intersect-card-and-transfer',
    kind: 'sql',
    dataset: 'retail',
    difficulty: 'medium',
    topics: ['INTERSECT', 'set operations'],
    title: { en: 'Travellers who paid fees', fr: 'Voyageurs ayant payé des frais' },
    prompt: p(
      'Return the `customer_id` of every customer who paid by card at a **travel** merchant **and** was charged at least one **fee** (use `INTERSECT`). Order does not matter.',
      'Renvoyez le `customer_id` de chaque client ayant payé par carte chez un commerçant de la catégorie **travel** **et** ayant eu au moins un prélèvement de **frais** (`fee`) (avec `INTERSECT`). L’ordre est libre.',
    ),
    reference: `SELECT a.customer_id FROM retail.transactions t
JOIN retail.accounts a ON a.account_id = t.account_id
JOIN retail.merchants m ON m.merchant_id = t.merchant_id
WHERE t.kind = 'card' AND m.category = 'travel'
INTERSECT
SELECT a.customer_id FROM retail.transactions t JOIN retail.accounts a ON a.account_id = t.account_id WHERE t.kind = 'fee'`,
    grader: g(false),
    wrongAnswers: [
      {
        answer: `SELECT a.customer_id FROM retail.transactions t JOIN retail.accounts a USING (account_id) JOIN retail.merchants m USING (merchant_id) WHERE t.kind = 'card' AND m.category = 'travel'
UNION SELECT a.customer_id FROM retail.transactions t JOIN retail.accounts a USING (account_id) WHERE t.kind = 'fee'`,
        explains: /extra/,
      },
      {
        answer: `SELECT DISTINCT a.customer_id FROM retail.transactions t JOIN retail.accounts a USING (account_id) WHERE t.kind = 'card' AND t.kind = 'fee'`,
        explains: /returned 0 rows/,
      },
    ],
  },
  {
    id: 'except-customers-without-activity',
    kind: 'sql',
    dataset: 'retail',
    difficulty: 'medium',
    topics: ['EXCEPT', 'set operations'],
    title: { en: 'Customers with no activity', fr: 'Clients sans activité' },
    prompt: p(
      'Return the `customer_id` of customers none of whose accounts has any transaction (use `EXCEPT`). Order does not matter.',
      'Renvoyez le `customer_id` des clients dont aucun compte n’a de transaction (avec `EXCEPT`). L’ordre est libre.',
    ),
    reference: `SELECT customer_id FROM retail.customers
EXCEPT
SELECT a.customer_id FROM retail.accounts a JOIN retail.transactions t ON t.account_id = a.account_id`,
    grader: g(false),
    wrongAnswers: [
      {
        answer: 'SELECT customer_id FROM retail.accounts EXCEPT SELECT account_id FROM retail.transactions',
        explains: /missing|extra/,
      },
      { answer: 'SELECT customer_id FROM retail.customers', explains: /extra/ },
    ],
  },
  {
    id: 'accounts-without-transactions',
    kind: 'sql',
    dataset: 'retail',
    difficulty: 'easy',
    topics: ['anti join', 'LEFT JOIN', 'NOT EXISTS'],
    title: { en: 'Dormant accounts', fr: 'Comptes dormants' },
    prompt: p(
      'List the accounts that have never had a transaction: `account_id`, `customer_id`, `type`, ordered by `account_id`. (An anti join: `LEFT JOIN … IS NULL` or `NOT EXISTS`.)',
      'Listez les comptes qui n’ont jamais eu de transaction : `account_id`, `customer_id`, `type`, triés par `account_id`. (Une anti-jointure : `LEFT JOIN … IS NULL` ou `NOT EXISTS`.)',
    ),
    reference: `SELECT a.account_id, a.customer_id, a.type FROM retail.accounts a
WHERE NOT EXISTS (SELECT 1 FROM retail.transactions t WHERE t.account_id = a.account_id)
ORDER BY a.account_id`,
    grader: g(true),
    wrongAnswers: [
      {
        answer: `SELECT a.account_id, a.customer_id, a.type FROM retail.accounts a JOIN retail.transactions t USING (account_id)
WHERE t.transaction_id IS NULL ORDER BY a.account_id`,
        explains: /missing|no rows|returned 0/,
      },
      {
        answer: `SELECT a.account_id, a.customer_id, a.type FROM retail.accounts a WHERE a.closed_at IS NOT NULL ORDER BY a.account_id`,
        explains: /row/,
      },
    ],
  },
  {
    id: 'full-join-monthly-categories',
    kind: 'sql',
    dataset: 'retail',
    difficulty: 'hard',
    topics: ['FULL OUTER JOIN', 'COALESCE', 'date_trunc'],
    title: { en: 'January against June', fr: 'Janvier face à juin' },
    prompt: p(
      'Compare card debit totals per merchant category (NULL category as `uncategorised`) between January 2025 and June 2025 (UTC). A category present in only one month must still appear, with 0 for the other month (a `FULL OUTER JOIN`). Return `category`, `january`, `june`, ordered by category.',
      'Comparez les totaux de débits carte par catégorie de commerçant (catégorie NULL en `uncategorised`) entre janvier 2025 et juin 2025 (UTC). Une catégorie présente un seul mois doit apparaître, avec 0 pour l’autre mois (un `FULL OUTER JOIN`). Renvoyez `category`, `january`, `june`, triés par catégorie.',
    ),
    reference: `WITH monthly AS (
  SELECT COALESCE(m.category, 'uncategorised') AS category,
         date_trunc('month', t.booked_at AT TIME ZONE 'UTC') AS month, SUM(t.amount) AS total
  FROM retail.transactions t JOIN retail.merchants m ON m.merchant_id = t.merchant_id
  WHERE t.kind = 'card' AND t.direction = 'debit'
  GROUP BY 1, 2
), jan AS (SELECT category, total FROM monthly WHERE month = '2025-01-01'),
   jun AS (SELECT category, total FROM monthly WHERE month = '2025-06-01')
SELECT COALESCE(jan.category, jun.category) AS category, COALESCE(jan.total, 0) AS january, COALESCE(jun.total, 0) AS june
FROM jan FULL OUTER JOIN jun ON jan.category = jun.category
ORDER BY 1`,
    grader: g(true),
    wrongAnswers: [
      {
        answer: `WITH monthly AS (SELECT m.category, date_trunc('month', t.booked_at AT TIME ZONE 'UTC') AS month, SUM(t.amount) AS total
  FROM retail.transactions t JOIN retail.merchants m USING (merchant_id) WHERE t.kind = 'card' AND t.direction = 'debit' GROUP BY 1, 2)
SELECT j.category, j.total AS january, u.total AS june FROM monthly j JOIN monthly u ON u.category = j.category
WHERE j.month = '2025-01-01' AND u.month = '2025-06-01' ORDER BY 1`,
        explains: /missing|row/,
      },
      { answer: "SELECT 'groceries' AS category, 0 AS january, 0 AS june", explains: /row/ },
    ],
  },
  {
    id: 'self-join-own-transfers',
    kind: 'sql',
    dataset: 'retail',
    difficulty: 'hard',
    topics: ['self join', 'JOIN'],
    title: { en: 'Transfers between one’s own accounts', fr: 'Virements entre ses propres comptes' },
    prompt: p(
      'Find outgoing transfers whose counterparty account belongs to the **same customer** (join `accounts` twice). Return `transaction_id`, `customer_id`, `from_account`, `to_account`, ordered by `transaction_id`.',
      'Trouvez les virements sortants dont le compte destinataire appartient au **même client** (jointure de `accounts` sur lui-même). Renvoyez `transaction_id`, `customer_id`, `from_account`, `to_account`, triés par `transaction_id`.',
    ),
    reference: `SELECT t.transaction_id, src.customer_id, src.account_id AS from_account, dst.account_id AS to_account
FROM retail.transactions t
JOIN retail.accounts src ON src.account_id = t.account_id
JOIN retail.accounts dst ON dst.account_id = t.counterparty_account_id
WHERE t.kind = 'transfer' AND t.direction = 'debit' AND src.customer_id = dst.customer_id
ORDER BY t.transaction_id`,
    grader: g(true),
    wrongAnswers: [
      {
        answer: `SELECT t.transaction_id, src.customer_id, src.account_id AS from_account, t.counterparty_account_id AS to_account
FROM retail.transactions t JOIN retail.accounts src USING (account_id) WHERE t.kind = 'transfer' ORDER BY t.transaction_id`,
        explains: /extra/,
      },
      {
        answer: `SELECT t.transaction_id, src.customer_id AS owner, src.account_id AS from_account, dst.account_id AS to_account
FROM retail.transactions t JOIN retail.accounts src ON src.account_id = t.account_id JOIN retail.accounts dst ON dst.account_id = t.counterparty_account_id
WHERE t.kind = 'transfer' AND t.direction = 'debit' AND src.customer_id = dst.customer_id ORDER BY t.transaction_id`,
        explains: /column.*customer_id|customer_id/,
      },
    ],
  },
  {
    id: 'group-having-frequent-travellers',
    kind: 'sql',
    dataset: 'retail',
    difficulty: 'easy',
    topics: ['GROUP BY', 'HAVING'],
    title: { en: 'Frequent travellers', fr: 'Voyageurs fréquents' },
    prompt: p(
      'Customers with at least 3 card transactions at **travel** merchants, and the number of such transactions. Return `customer_id`, `travel_transactions`. Order does not matter.',
      'Les clients ayant au moins 3 transactions carte chez des commerçants de la catégorie **travel**, et leur nombre. Renvoyez `customer_id`, `travel_transactions`. L’ordre est libre.',
    ),
    reference: `SELECT a.customer_id, COUNT(*) AS travel_transactions
FROM retail.transactions t
JOIN retail.accounts a ON a.account_id = t.account_id
JOIN retail.merchants m ON m.merchant_id = t.merchant_id
WHERE t.kind = 'card' AND m.category = 'travel'
GROUP BY a.customer_id HAVING COUNT(*) >= 3`,
    grader: g(false),
    wrongAnswers: [
      {
        answer: `SELECT a.customer_id, COUNT(*) AS travel_transactions FROM retail.transactions t JOIN retail.accounts a USING (account_id)
JOIN retail.merchants m USING (merchant_id) WHERE m.category = 'travel' GROUP BY a.customer_id`,
        explains: /extra/,
      },
      {
        answer: `SELECT a.customer_id, COUNT(*) AS travel_transactions FROM retail.transactions t JOIN retail.accounts a USING (account_id)
JOIN retail.merchants m USING (merchant_id) WHERE t.kind = 'card' AND m.category = 'travel' GROUP BY a.customer_id HAVING COUNT(*) > 3`,
        explains: /missing/,
      },
    ],
  },
  {
    id: 'cte-month-over-month',
    kind: 'sql',
    dataset: 'retail',
    difficulty: 'medium',
    topics: ['CTE', 'LAG', 'date_trunc'],
    title: { en: 'Month over month', fr: 'D’un mois sur l’autre' },
    prompt: p(
      'With a CTE, compute the total salary credits per month (UTC, `booked_at`) and the change from the previous month (`LAG`; NULL for the first month). Return `month` (a date, first of the month), `total`, `change`, ordered by month.',
      'Avec une CTE, calculez le total des salaires crédités par mois (UTC, `booked_at`) et la variation par rapport au mois précédent (`LAG` ; NULL pour le premier mois). Renvoyez `month` (une date, premier du mois), `total`, `change`, triés par mois.',
    ),
    reference: `WITH monthly AS (
  SELECT date_trunc('month', booked_at AT TIME ZONE 'UTC')::date AS month, SUM(amount) AS total
  FROM retail.transactions WHERE kind = 'salary' GROUP BY 1
)
SELECT month, total, total - LAG(total) OVER (ORDER BY month) AS change FROM monthly ORDER BY month`,
    grader: g(true),
    wrongAnswers: [
      {
        answer: `WITH monthly AS (SELECT date_trunc('month', booked_at AT TIME ZONE 'UTC')::date AS month, SUM(amount) AS total FROM retail.transactions WHERE kind = 'salary' GROUP BY 1)
SELECT month, total, LAG(total) OVER (ORDER BY month) - total AS change FROM monthly ORDER BY month`,
        explains: /change/,
      },
      {
        answer: `SELECT date_trunc('month', booked_at)::date AS month, SUM(amount) AS total, 0 AS change FROM retail.transactions GROUP BY 1 ORDER BY 1`,
        explains: /total|change/,
      },
    ],
  },
  {
    id: 'rolling-seven-days',
    kind: 'sql',
    dataset: 'retail',
    difficulty: 'hard',
    topics: ['window frames', 'RANGE', 'interval'],
    title: { en: 'Seven-day rolling spend', fr: 'Dépense glissante sur sept jours' },
    prompt: p(
      "For account 1, compute for each of its debit transactions the total of its debits over the 7 days ending at that transaction (`booked_at` within the previous 6 days and the transaction itself: a `RANGE BETWEEN INTERVAL '6 days' PRECEDING AND CURRENT ROW` frame). Return `transaction_id`, `booked_at`, `rolling_7d`, ordered by `booked_at`, `transaction_id`.",
      "Prenez le compte ayant le plus de débits (à égalité, le plus petit `account_id`). Pour chacun de ses débits, calculez le total de ses débits sur les 7 jours se terminant à cette transaction (`booked_at` dans les 6 jours précédents et la transaction elle-même : un cadre `RANGE BETWEEN INTERVAL '6 days' PRECEDING AND CURRENT ROW`). Renvoyez `transaction_id`, `booked_at`, `rolling_7d`, triés par `booked_at`, `transaction_id`.",
    ),
    reference: `WITH busiest AS (
  SELECT account_id FROM retail.transactions WHERE direction = 'debit'
  GROUP BY account_id ORDER BY COUNT(*) DESC, account_id LIMIT 1
)
SELECT transaction_id, booked_at,
       SUM(amount) OVER (ORDER BY booked_at RANGE BETWEEN INTERVAL '6 days' PRECEDING AND CURRENT ROW) AS rolling_7d
FROM retail.transactions WHERE account_id = (SELECT account_id FROM busiest) AND direction = 'debit'
ORDER BY booked_at, transaction_id`,
    grader: g(true),
    wrongAnswers: [
      {
        answer: `SELECT transaction_id, booked_at, SUM(amount) OVER (ORDER BY booked_at ROWS BETWEEN 6 PRECEDING AND CURRENT ROW) AS rolling_7d
FROM retail.transactions WHERE account_id = (SELECT account_id FROM retail.transactions WHERE direction = 'debit' GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1)
  AND direction = 'debit' ORDER BY booked_at, transaction_id`,
        explains: /rolling_7d/,
      },
      {
        answer: `SELECT transaction_id, booked_at, amount AS rolling_7d FROM retail.transactions WHERE account_id = (SELECT account_id FROM retail.transactions WHERE direction = 'debit' GROUP BY 1 ORDER BY COUNT(*) DESC, 1 LIMIT 1)
  AND direction = 'debit' ORDER BY booked_at, transaction_id`,
        explains: /rolling_7d/,
      },
    ],
  },
  {
    id: 'dedupe-transactions',
    kind: 'sql',
    dataset: 'retail',
    difficulty: 'medium',
    topics: ['deduplication', 'ROW_NUMBER', 'GROUP BY'],
    title: { en: 'Ingested twice', fr: 'Ingérées deux fois' },
    prompt: p(
      'Some movements were ingested twice: same `account_id`, `reference`, `amount` and `booked_at`, different `transaction_id`. Return the ids of the copies to delete — every `transaction_id` of such a group except the smallest — as a single column `transaction_id`. Order does not matter.',
      'Certains mouvements ont été ingérés deux fois : même `account_id`, `reference`, `amount` et `booked_at`, `transaction_id` différent. Renvoyez les identifiants des copies à supprimer — chaque `transaction_id` d’un tel groupe sauf le plus petit — dans une seule colonne `transaction_id`. L’ordre est libre.',
    ),
    reference: `SELECT transaction_id FROM (
  SELECT transaction_id, ROW_NUMBER() OVER (PARTITION BY account_id, reference, amount, booked_at ORDER BY transaction_id) AS copy
  FROM retail.transactions
) t WHERE copy > 1`,
    grader: g(false),
    wrongAnswers: [
      {
        answer: `SELECT transaction_id FROM (SELECT transaction_id, ROW_NUMBER() OVER (PARTITION BY account_id, reference, amount, booked_at ORDER BY transaction_id) AS copy FROM retail.transactions) t WHERE copy = 1`,
        explains: /extra/,
      },
      {
        answer:
          'SELECT MIN(transaction_id) AS transaction_id FROM retail.transactions GROUP BY account_id, reference, amount, booked_at HAVING COUNT(*) > 1',
        explains: /missing|extra/,
      },
    ],
  },
  {
    id: 'late-arrivals',
    kind: 'sql',
    dataset: 'retail',
    difficulty: 'medium',
    topics: ['timestamps', 'interval', 'GROUP BY'],
    title: { en: 'Late-arriving data', fr: 'Données arrivées en retard' },
    prompt: p(
      'A row is *late* when it was ingested more than 2 days after it was booked. Per booking month (UTC), count all rows and late rows. Return `month` (date), `rows`, `late_rows`, ordered by month.',
      'Une ligne est *en retard* quand elle a été ingérée plus de 2 jours après sa comptabilisation. Par mois de comptabilisation (UTC), comptez toutes les lignes et les lignes en retard. Renvoyez `month` (date), `rows`, `late_rows`, triés par mois.',
    ),
    reference: `SELECT date_trunc('month', booked_at AT TIME ZONE 'UTC')::date AS month, COUNT(*) AS rows,
       COUNT(*) FILTER (WHERE ingested_at - booked_at > INTERVAL '2 days') AS late_rows
FROM retail.transactions GROUP BY 1 ORDER BY 1`,
    grader: g(true),
    wrongAnswers: [
      {
        answer: `SELECT date_trunc('month', ingested_at AT TIME ZONE 'UTC')::date AS month, COUNT(*) AS rows,
COUNT(*) FILTER (WHERE ingested_at - booked_at > INTERVAL '2 days') AS late_rows FROM retail.transactions GROUP BY 1 ORDER BY 1`,
        explains: /row/,
      },
      {
        answer: `SELECT date_trunc('month', booked_at AT TIME ZONE 'UTC')::date AS month, COUNT(*) AS rows, COUNT(*) FILTER (WHERE ingested_at > booked_at) AS late_rows FROM retail.transactions GROUP BY 1 ORDER BY 1`,
        explains: /late_rows/,
      },
    ],
  },
  {
    id: 'spend-in-euros',
    kind: 'sql',
    dataset: 'retail',
    difficulty: 'hard',
    topics: ['JOIN', 'currency conversion', 'time zones'],
    title: { en: 'Everything in euros', fr: 'Tout en euros' },
    prompt: p(
      'Convert every card debit to EUR with the rate of its booking day (UTC) from `exchange_rates`, and total by customer country. Return `country`, `total_eur` rounded to 2 decimals, ordered by `total_eur` descending.',
      'Convertissez chaque débit carte en EUR au taux de son jour de comptabilisation (UTC) dans `exchange_rates`, puis totalisez par pays du client. Renvoyez `country`, `total_eur` arrondi à 2 décimales, triés par `total_eur` décroissant.',
    ),
    reference: `SELECT c.country, ROUND(SUM(t.amount * r.rate_to_eur), 2) AS total_eur
FROM retail.transactions t
JOIN retail.accounts a ON a.account_id = t.account_id
JOIN retail.customers c ON c.customer_id = a.customer_id
JOIN retail.exchange_rates r ON r.currency = t.currency AND r.rate_date = (t.booked_at AT TIME ZONE 'UTC')::date
WHERE t.kind = 'card' AND t.direction = 'debit'
GROUP BY c.country ORDER BY total_eur DESC`,
    grader: g(true, 0.05),
    wrongAnswers: [
      {
        answer: `SELECT c.country, ROUND(SUM(t.amount), 2) AS total_eur FROM retail.transactions t JOIN retail.accounts a USING (account_id)
JOIN retail.customers c USING (customer_id) WHERE t.kind = 'card' AND t.direction = 'debit' GROUP BY c.country ORDER BY total_eur DESC`,
        explains: /total_eur|row/,
      },
      {
        answer: 'SELECT country, 0 AS total_eur FROM retail.customers GROUP BY country',
        explains: /row|total_eur/,
      },
    ],
  },
];
