import type { RetailData } from './v1.ts';

/** PostgreSQL DDL of retail@1. The dataset lives in schema `retail`, read-only for the candidate. */
export const RETAIL_DDL = `
CREATE SCHEMA retail;
COMMENT ON SCHEMA retail IS 'Épreuve dataset retail@1: a retail bank. Read-only for candidates.';

CREATE TABLE retail.customers (
  customer_id  integer PRIMARY KEY,
  first_name   text NOT NULL,
  last_name    text NOT NULL,
  email        text,
  country      text NOT NULL CHECK (length(country) = 2),
  city         text NOT NULL,
  timezone     text NOT NULL,
  segment      text NOT NULL CHECK (segment IN ('retail', 'premium', 'business')),
  created_at   timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL
);

CREATE TABLE retail.merchants (
  merchant_id  integer PRIMARY KEY,
  name         text NOT NULL,
  category     text,
  country      text NOT NULL,
  updated_at   timestamptz NOT NULL
);

CREATE TABLE retail.accounts (
  account_id   integer PRIMARY KEY,
  customer_id  integer NOT NULL REFERENCES retail.customers,
  iban         text NOT NULL UNIQUE,
  type         text NOT NULL CHECK (type IN ('checking', 'savings', 'card')),
  currency     text NOT NULL CHECK (length(currency) = 3),
  opened_at    timestamptz NOT NULL,
  closed_at    timestamptz,
  updated_at   timestamptz NOT NULL
);

CREATE TABLE retail.transactions (
  transaction_id          bigint PRIMARY KEY,
  account_id              integer NOT NULL REFERENCES retail.accounts,
  merchant_id             integer REFERENCES retail.merchants,
  counterparty_account_id integer REFERENCES retail.accounts,
  kind                    text NOT NULL CHECK (kind IN ('card', 'transfer', 'fee', 'refund', 'salary')),
  direction               text NOT NULL CHECK (direction IN ('debit', 'credit')),
  amount                  numeric(12, 2) NOT NULL CHECK (amount > 0),
  currency                text NOT NULL,
  booked_at               timestamptz NOT NULL,
  ingested_at             timestamptz NOT NULL,
  reference               text NOT NULL,
  updated_at              timestamptz NOT NULL
);
CREATE INDEX transactions_account_booked ON retail.transactions (account_id, booked_at);
CREATE INDEX transactions_merchant ON retail.transactions (merchant_id);

CREATE TABLE retail.exchange_rates (
  currency     text NOT NULL,
  rate_date    date NOT NULL,
  rate_to_eur  numeric(14, 6) NOT NULL,
  PRIMARY KEY (currency, rate_date)
);
`;

/** Tables in load order (foreign keys first), with their columns. */
export const RETAIL_TABLES: Array<{ table: keyof RetailData; columns: string[] }> = [
  {
    table: 'customers',
    columns: [
      'customer_id',
      'first_name',
      'last_name',
      'email',
      'country',
      'city',
      'timezone',
      'segment',
      'created_at',
      'updated_at',
    ],
  },
  { table: 'merchants', columns: ['merchant_id', 'name', 'category', 'country', 'updated_at'] },
  {
    table: 'accounts',
    columns: [
      'account_id',
      'customer_id',
      'iban',
      'type',
      'currency',
      'opened_at',
      'closed_at',
      'updated_at',
    ],
  },
  {
    table: 'transactions',
    columns: [
      'transaction_id',
      'account_id',
      'merchant_id',
      'counterparty_account_id',
      'kind',
      'direction',
      'amount',
      'currency',
      'booked_at',
      'ingested_at',
      'reference',
      'updated_at',
    ],
  },
  { table: 'exchange_rates', columns: ['currency', 'rate_date', 'rate_to_eur'] },
];
