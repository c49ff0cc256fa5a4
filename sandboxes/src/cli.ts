/**
 * epreuve-sandbox — the seeder/grader image's command line.
 *   seed                      seed every sandbox of $EPREUVE_SEED_PLAN (the operator's seed Job)
 *   rotate                    set the candidate passwords now in the mounted Secrets (a claimed warm pool namespace's rotate Job)
 *   grade <exercise> <answer-file|->   grade an answer against a sandbox (--postgres URL | --mongo URL --database NAME)
 *   exercises                 list the exercise catalogue
 *   prebuild <dir>            write the generated tables the image ships (datasets/prebuilt.ts; the image build runs it)
 *   grade-server              serve the grader of one candidate namespace ($EPREUVE_GRADER_PLAN)
 * Exit codes: 0 success (or a passing answer), 1 failure (or a failing answer), 2 bad usage.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { GRADER, graderPlanSchema, SEED_PLAN_ENV } from '@epreuve/crds';
import { MongoClient } from 'mongodb';
import pino from 'pino';
import { allDatasets } from './datasets/catalog.ts';
import { PREBUILT_DIR_ENV, PREBUILT_VARIANTS, writePrebuilt } from './datasets/prebuilt.ts';
import { EXERCISES, findExercise } from './exercises/index.ts';
import { type GradeResult, gradeMongo, gradeSql } from './grader/index.ts';
import { buildGradeServer } from './grader/server.ts';
import { runRotate } from './seeder/rotate.ts';
import { parsePlan, rolelessOptIn, runSeed } from './seeder/run.ts';

class UsageError extends Error {}

const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
const usage =
  'usage: epreuve-sandbox seed | rotate | grade <exercise> <answer-file|-> (--postgres URL | --mongo URL --database NAME) | exercises | grade-server | prebuild <dir>';

/** Parses the grader plan; the error names the offending entry and field. */
export function parseGraderPlan(json: string | undefined) {
  if (!json)
    throw new UsageError(
      `${GRADER.planEnv} is not set: it should hold the JSON grader plan the operator writes`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new UsageError(`${GRADER.planEnv} is not valid JSON: ${(err as Error).message}`);
  }
  const res = graderPlanSchema.safeParse(raw);
  if (!res.success)
    throw new UsageError(
      `${GRADER.planEnv} is invalid: ${res.error.issues.map((i) => `[${i.path.join('.')}] ${i.message}`).join('; ')}`,
    );
  return res.data;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'seed': {
      const plan = parsePlan(process.env[SEED_PLAN_ENV]);
      const size = process.env.EPREUVE_DATASET_SIZE ?? 'standard';
      if (size !== 'small' && size !== 'standard')
        throw new UsageError(`EPREUVE_DATASET_SIZE must be small or standard, got "${size}"`);
      const waitTimeoutMs = Number(process.env.EPREUVE_SEED_WAIT_SECONDS ?? 600) * 1000;
      log(
        `seeding ${plan.length} sandbox(es): ${plan.map((p) => `${p.name} (${p.kind}, ${p.dataset})`).join(', ')}; size ${size}`,
      );
      await runSeed(plan, {
        size,
        waitTimeoutMs,
        log,
        allowRolelessUsers: rolelessOptIn(process.env),
        prebuiltDir: process.env[PREBUILT_DIR_ENV] || undefined,
      });
      log('seed complete');
      return 0;
    }
    case 'rotate': {
      const plan = parsePlan(process.env[SEED_PLAN_ENV]);
      const waitTimeoutMs = Number(process.env.EPREUVE_SEED_WAIT_SECONDS ?? 120) * 1000;
      await runRotate(plan, { waitTimeoutMs, log, allowRolelessUsers: rolelessOptIn(process.env) });
      log('credentials rotated');
      return 0;
    }
    case 'grade': {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          postgres: { type: 'string' },
          mongo: { type: 'string' },
          database: { type: 'string' },
          json: { type: 'boolean' },
        },
      });
      const [id, file] = positionals;
      if (!id || !file) throw new UsageError(usage);
      const exercise = findExercise(id);
      const answer = readFileSync(file === '-' ? 0 : file, 'utf8');
      let grade: GradeResult;
      if (exercise.kind === 'sql') {
        if (!values.postgres)
          throw new UsageError('grading a SQL exercise needs --postgres postgres://grader:…@host:port/db');
        grade = await gradeSql({ connectionString: values.postgres }, exercise, answer);
      } else {
        if (!values.mongo || !values.database)
          throw new UsageError('grading a Mongo exercise needs --mongo URL and --database NAME');
        const unconnected = new MongoClient(values.mongo);
        unconnected.on('error', () => {}); // a dying server fails the grading in flight, not the process
        const client = await unconnected.connect();
        try {
          grade = await gradeMongo(client, values.database, exercise, answer);
        } finally {
          await client.close();
        }
      }
      console.log(
        values.json ? JSON.stringify(grade) : `${grade.pass ? 'PASS' : 'FAIL'}: ${grade.explanation}`,
      );
      return grade.pass ? 0 : 1;
    }
    case 'grade-server': {
      const plan = parseGraderPlan(process.env[GRADER.planEnv]);
      const tokenFile =
        process.env.EPREUVE_GRADER_TOKEN_FILE ?? `${GRADER.tokenMountPath}/${GRADER.tokenKey}`;
      const app = await buildGradeServer({
        plan,
        token: () => readFileSync(tokenFile, 'utf8').trim(),
        log: pino({ name: 'epreuve-grader', level: process.env.EPREUVE_LOG_LEVEL ?? 'info' }),
      });
      await app.listen({ host: '0.0.0.0', port: Number(process.env.EPREUVE_GRADER_PORT ?? GRADER.port) });
      await new Promise<void>((resolve) => {
        process.once('SIGTERM', resolve);
        process.once('SIGINT', resolve);
      });
      await app.close();
      return 0;
    }
    case 'prebuild': {
      const [dir] = rest;
      if (!dir || rest.length > 1) throw new UsageError(usage);
      for (const d of allDatasets())
        for (const { size, variant } of PREBUILT_VARIANTS) {
          const started = Date.now();
          const file = writePrebuilt(dir, d, size, variant);
          log(`prebuilt ${file} in ${Date.now() - started} ms`);
        }
      return 0;
    }
    case 'exercises':
      for (const e of EXERCISES)
        console.log(`${e.id.padEnd(36)} ${e.kind.padEnd(6)} ${e.difficulty.padEnd(7)} ${e.title.en}`);
      return 0;
    default:
      throw new UsageError(usage);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`epreuve-sandbox: ${err.message}`);
    process.exit(
      err instanceof UsageError || /EPREUVE_SEED_PLAN|unknown (dataset|exercise)/.test(err.message) ? 2 : 1,
    );
  },
);
