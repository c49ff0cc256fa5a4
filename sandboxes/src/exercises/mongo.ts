import type { Exercise } from './types.ts';

const g = (orderMatters: boolean, numericTolerance = 0.005) => ({
  orderMatters,
  numericTolerance,
  ignoreColumnNames: false,
});
const note = {
  en: 'Collections: `card_events` (authorizations, captures, declines and refunds, with the merchant embedded) and `app_sessions` (mobile and web sessions; `ended_at` is null when the app crashed). Answer with an aggregation pipeline written as JSON, e.g. `[{"$match": {"type": "decline"}}]`.',
  fr: 'Collections : `card_events` (autorisations, débits, refus et remboursements, avec le commerçant imbriqué) et `app_sessions` (sessions mobiles et web ; `ended_at` est null quand l’application a planté). Répondez par un pipeline d’agrégation écrit en JSON, par ex. `[{"$match": {"type": "decline"}}]`.',
};
const p = (en: string, fr: string) => ({ en: `${en}\n\n${note.en}`, fr: `${fr}\n\n${note.fr}` });

/**
 * MongoDB exercises on retail@1. The pipelines stick to what every server the sandbox may run supports —
 * MongoDB and FerretDB v1 alike: $match, $group with $sum, $sort, $limit, $unwind, $count.
 */
export const MONGO_EXERCISES: Exercise[] = [
  {
    id: 'sessions-per-device',
    kind: 'mongo',
    dataset: 'retail',
    collection: 'app_sessions',
    difficulty: 'easy',
    topics: ['$group', '$sort'],
    title: { en: 'Sessions per device', fr: 'Sessions par appareil' },
    prompt: p(
      'Count app sessions per `device`, most first. Output documents `{_id: <device>, sessions: <count>}`.',
      'Comptez les sessions par `device`, la plus fréquente d’abord. Documents en sortie : `{_id: <device>, sessions: <nombre>}`.',
    ),
    reference:
      '[{"$group": {"_id": "$device", "sessions": {"$sum": 1}}}, {"$sort": {"sessions": -1, "_id": 1}}]',
    grader: g(true),
    wrongAnswers: [
      {
        answer: '[{"$group": {"_id": "$device", "sessions": {"$sum": 1}}}, {"$sort": {"sessions": 1}}]',
        explains: /order/,
      },
      {
        answer: '[{"$group": {"_id": "$app_version", "sessions": {"$sum": 1}}}, {"$sort": {"sessions": -1}}]',
        explains: /row/,
      },
    ],
  },
  {
    id: 'declines-by-category',
    kind: 'mongo',
    dataset: 'retail',
    collection: 'card_events',
    difficulty: 'easy',
    topics: ['$match', '$group', 'embedded documents', 'null'],
    title: { en: 'Declines by merchant category', fr: 'Refus par catégorie de commerçant' },
    prompt: p(
      'Count **declined** card events by the embedded `merchant.category` (merchants without a category count under `null`). Output `{_id: <category>, declines: <count>}`; order does not matter.',
      'Comptez les événements carte **refusés** (`decline`) par `merchant.category` imbriquée (les commerçants sans catégorie comptent sous `null`). Sortie : `{_id: <catégorie>, declines: <nombre>}` ; l’ordre est libre.',
    ),
    reference:
      '[{"$match": {"type": "decline"}}, {"$group": {"_id": "$merchant.category", "declines": {"$sum": 1}}}]',
    grader: g(false),
    wrongAnswers: [
      {
        answer: '[{"$group": {"_id": "$merchant.category", "declines": {"$sum": 1}}}]',
        explains: /declines/,
      },
      {
        answer:
          '[{"$match": {"type": "decline", "merchant.category": {"$ne": null}}}, {"$group": {"_id": "$merchant.category", "declines": {"$sum": 1}}}]',
        explains: /missing.*NULL/,
      },
    ],
  },
  {
    id: 'top-card-spenders',
    kind: 'mongo',
    dataset: 'retail',
    collection: 'card_events',
    difficulty: 'medium',
    topics: ['$match', '$group', '$sum', '$limit'],
    title: { en: 'Top five card spenders', fr: 'Les cinq plus gros dépensiers' },
    prompt: p(
      'Sum `amount.value` of **captured** card events per `customer_id` and return the top 5, highest first (ties by `_id`): `{_id: <customer_id>, spent: <sum>}`. Amounts are in mixed currencies; sum them as they are.',
      'Additionnez `amount.value` des événements carte **débités** (`capture`) par `customer_id` et renvoyez les 5 premiers, du plus grand au plus petit (à égalité, par `_id`) : `{_id: <customer_id>, spent: <somme>}`. Les montants sont en devises mélangées ; additionnez-les tels quels.',
    ),
    reference:
      '[{"$match": {"type": "capture"}}, {"$group": {"_id": "$customer_id", "spent": {"$sum": "$amount.value"}}}, {"$sort": {"spent": -1, "_id": 1}}, {"$limit": 5}]',
    grader: g(true, 0.01),
    wrongAnswers: [
      {
        answer:
          '[{"$group": {"_id": "$customer_id", "spent": {"$sum": "$amount.value"}}}, {"$sort": {"spent": -1, "_id": 1}}, {"$limit": 5}]',
        explains: /row|spent/,
      },
      {
        answer:
          '[{"$match": {"type": "capture"}}, {"$group": {"_id": "$customer_id", "spent": {"$sum": 1}}}, {"$sort": {"spent": -1}}, {"$limit": 5}]',
        explains: /row|spent/,
      },
    ],
  },
  {
    id: 'popular-screens',
    kind: 'mongo',
    dataset: 'retail',
    collection: 'app_sessions',
    difficulty: 'medium',
    topics: ['$unwind', '$group', 'arrays'],
    title: { en: 'Most visited screens', fr: 'Écrans les plus visités' },
    prompt: p(
      'Each session lists the `screens` visited. Count visits per screen across all sessions (`$unwind`) and return them most visited first (ties by name): `{_id: <screen>, visits: <count>}`.',
      'Chaque session liste les écrans visités (`screens`). Comptez les visites par écran sur toutes les sessions (`$unwind`) et renvoyez-les de la plus visitée à la moins visitée (à égalité, par nom) : `{_id: <écran>, visits: <nombre>}`.',
    ),
    reference:
      '[{"$unwind": "$screens"}, {"$group": {"_id": "$screens", "visits": {"$sum": 1}}}, {"$sort": {"visits": -1, "_id": 1}}]',
    grader: g(true),
    wrongAnswers: [
      {
        answer: '[{"$group": {"_id": "$screens", "visits": {"$sum": 1}}}, {"$sort": {"visits": -1}}]',
        explains: /row/,
      },
      {
        answer:
          '[{"$unwind": "$screens"}, {"$group": {"_id": "$screens", "visits": {"$sum": 1}}}, {"$sort": {"_id": 1}}]',
        explains: /order/,
      },
    ],
  },
  {
    id: 'crashes-by-app-version',
    kind: 'mongo',
    dataset: 'retail',
    collection: 'app_sessions',
    difficulty: 'easy',
    topics: ['$match', 'null', '$group'],
    title: { en: 'Which release crashes?', fr: 'Quelle version plante ?' },
    prompt: p(
      'A session whose `ended_at` is null crashed. Count crashed sessions per `app_version`: `{_id: <version>, crashes: <count>}`; order does not matter.',
      'Une session dont `ended_at` est null a planté. Comptez les sessions plantées par `app_version` : `{_id: <version>, crashes: <nombre>}` ; l’ordre est libre.',
    ),
    reference:
      '[{"$match": {"ended_at": null}}, {"$group": {"_id": "$app_version", "crashes": {"$sum": 1}}}]',
    grader: g(false),
    wrongAnswers: [
      {
        answer:
          '[{"$match": {"ended_at": {"$ne": null}}}, {"$group": {"_id": "$app_version", "crashes": {"$sum": 1}}}]',
        explains: /crashes|row/,
      },
      { answer: '[{"$group": {"_id": "$app_version", "crashes": {"$sum": 1}}}]', explains: /crashes|row/ },
    ],
  },
  {
    id: 'migration-extract-merchants',
    kind: 'mongo',
    dataset: 'retail',
    collection: 'card_events',
    difficulty: 'hard',
    topics: ['migration', 'embed vs reference', '$group'],
    title: { en: 'Migration: extract merchants', fr: 'Migration : extraire les commerçants' },
    prompt: p(
      'Schema v2 stops embedding merchants in `card_events` and references a new `merchants` collection instead. Write the pipeline that finds the documents of that collection in the events: one per distinct embedded merchant, `{_id: <the embedded merchant document>, events: <number of card events>}` (group on the whole sub-document). The migration job then writes `_id.id`, `_id.name` and `_id.category` to `merchants`. Order does not matter.',
      'Le schéma v2 n’imbrique plus les commerçants dans `card_events` mais référence une nouvelle collection `merchants`. Écrivez le pipeline qui retrouve les documents de cette collection dans les événements : un par commerçant imbriqué distinct, `{_id: <le sous-document commerçant>, events: <nombre d’événements carte>}` (regroupez sur le sous-document entier). Le job de migration écrit ensuite `_id.id`, `_id.name` et `_id.category` dans `merchants`. L’ordre est libre.',
    ),
    reference: '[{"$group": {"_id": "$merchant", "events": {"$sum": 1}}}]',
    grader: g(false),
    wrongAnswers: [
      { answer: '[{"$group": {"_id": "$merchant.name", "events": {"$sum": 1}}}]', explains: /row/ },
      {
        answer: '[{"$match": {"type": "capture"}}, {"$group": {"_id": "$merchant", "events": {"$sum": 1}}}]',
        explains: /events/,
      },
    ],
  },
  {
    id: 'model-embed-or-reference',
    kind: 'mongo',
    dataset: 'retail',
    collection: 'card_events',
    difficulty: 'medium',
    topics: ['modelling', 'embed vs reference'],
    title: { en: 'Embed or reference?', fr: 'Imbriquer ou référencer ?' },
    prompt: p(
      '`card_events` embeds a copy of the merchant (`id`, `name`, `category`). When a merchant changes category, what happens to past events? Argue for embedding, referencing, or a mix (e.g. embed an immutable snapshot plus the id), considering read patterns, the 16 MB document limit, and how you would migrate. Write your answer in prose.',
      '`card_events` imbrique une copie du commerçant (`id`, `name`, `category`). Quand un commerçant change de catégorie, que deviennent les événements passés ? Défendez l’imbrication, la référence ou un mélange (par ex. un instantané immuable plus l’identifiant), en tenant compte des lectures, de la limite de 16 Mo par document et de la migration. Répondez en prose.',
    ),
    reference:
      'Embedding serves the dominant read (an event with its merchant) in one document and keeps the merchant as it was when the event happened, which is what a ledger wants; the copy is small and bounded, so the 16 MB limit is not a concern. Referencing avoids stale copies for attributes that must be current (category for analytics) at the cost of a $lookup. A good answer embeds an immutable snapshot plus merchant.id, keeps a merchants collection as the source of truth, and migrates with a versioned, idempotent job (backfill, dual write, then switch reads), recorded in a migrations collection.',
    grader: g(false),
    manual: {
      rubric:
        'Names the trade-off (read locality vs. staleness); says what past events should show; mentions $lookup cost, document size, and a versioned, idempotent migration.',
    },
    wrongAnswers: [],
  },
];
