import { durationMs } from '@epreuve/crds';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { AssessmentObject, AssessmentStore } from './assessments.ts';
import { type GradingService, gradingOf, type SubmissionObject } from './grading.ts';
import type { Interviews, Scores } from './interviews.ts';
import type { RequestLogs } from './request-log.ts';
import { type DataApiUsage, dataApiUsage, type IntegritySignals, integritySignals } from './signals.ts';
import { type AnswerForComparison, type SimilarPair, similarPairs } from './similarity.ts';

/** One task's line of a scorecard: its best grade so far. */
export interface TaskScore {
  id: string;
  kind: 'auto' | 'manual';
  max: number;
  /** Best points over the attempts (a manual task: its reviewer's grade). */
  earned: number;
  attempts: number;
  /** A manual task with an answer no reviewer has graded yet. */
  toReview: boolean;
}

/** What a hiring team acts on: automatic, manual and interview points, attempts and time used. */
export interface Scorecard {
  assessment: string;
  candidate: string;
  template: string;
  phase: string;
  tasks: TaskScore[];
  auto: { earned: number; max: number };
  manual: { earned: number; max: number; toReview: number };
  /** 0–4 per scored question of the interview guide. */
  interview: { earned: number; max: number; scored: number };
  total: { earned: number; max: number };
  /** From the start of the clock to the last submission (or to now, or the end). */
  timeUsedSeconds: number | null;
  startedAt: string | null;
  /** When the clock stops (null until it starts), and whether staff revoked the assessment. */
  expiresAt: string | null;
  revoked: boolean;
  /** What the gateway saw, the first answer's delay, data API use: signals, never verdicts. */
  signals: IntegritySignals;
}

/** Pure: the scorecard of one assessment from its submissions and interview scores. */
export function scorecardOf(
  a: AssessmentObject,
  submissions: SubmissionObject[],
  interview: Scores,
  now: Date,
  durationLimitMs: number | undefined,
  tasks: Array<{ id: string; points: number; manual: boolean }>,
  dataApi: DataApiUsage | null = null,
): Scorecard {
  const lines: TaskScore[] = tasks.map((t) => {
    const mine = submissions.filter((s) => s.spec.task === t.id);
    return {
      id: t.id,
      kind: t.manual ? 'manual' : 'auto',
      max: t.points,
      earned: Math.max(0, ...mine.map((s) => s.status?.points ?? 0)),
      attempts: mine.length,
      toReview: t.manual && mine.some((s) => !s.status?.graded),
    };
  });
  const sum = (xs: TaskScore[], f: (x: TaskScore) => number) => xs.reduce((n, x) => n + f(x), 0);
  const auto = lines.filter((l) => l.kind === 'auto');
  const manual = lines.filter((l) => l.kind === 'manual');
  const scored = Object.values(interview);
  const startedAt = a.status?.startedAt ?? null;
  const last = submissions.map((s) => Date.parse(s.spec.submittedAt)).sort((x, y) => y - x)[0];
  const end = Math.min(
    last ?? now.getTime(),
    a.status?.expiresAt ? Date.parse(a.status.expiresAt) : Number.POSITIVE_INFINITY,
    startedAt && durationLimitMs ? Date.parse(startedAt) + durationLimitMs : Number.POSITIVE_INFINITY,
  );
  const card = {
    auto: { earned: sum(auto, (l) => l.earned), max: sum(auto, (l) => l.max) },
    manual: {
      earned: sum(manual, (l) => l.earned),
      max: sum(manual, (l) => l.max),
      toReview: manual.filter((l) => l.toReview).length,
    },
    interview: {
      earned: scored.reduce((n, s) => n + s.score, 0),
      max: scored.length * 4,
      scored: scored.length,
    },
  };
  return {
    assessment: a.metadata.name!,
    candidate: a.spec.candidate.name,
    template: a.spec.templateRef.name,
    phase: a.status?.phase ?? 'Pending',
    tasks: lines,
    ...card,
    total: {
      earned: card.auto.earned + card.manual.earned + card.interview.earned,
      max: card.auto.max + card.manual.max + card.interview.max,
    },
    timeUsedSeconds: startedAt ? Math.max(0, Math.round((end - Date.parse(startedAt)) / 1000)) : null,
    startedAt,
    expiresAt: a.status?.expiresAt ?? null,
    revoked: Boolean(a.spec.revoked),
    signals: integritySignals(a, submissions, dataApi),
  };
}

/** Scorecards for staff: one per assessment, and a team's as CSV. */
export class Scorecards {
  private readonly store: AssessmentStore;
  private readonly grading: GradingService;
  private readonly interviews: Interviews;
  private readonly requestLogs?: RequestLogs;

  constructor(
    store: AssessmentStore,
    grading: GradingService,
    interviews: Interviews,
    requestLogs?: RequestLogs,
  ) {
    this.store = store;
    this.grading = grading;
    this.interviews = interviews;
    this.requestLogs = requestLogs;
  }

  /** The data API usage of a running assessment; null without a data API (or once it ended). */
  private async dataApiOf(a: AssessmentObject): Promise<DataApiUsage | null> {
    if (!this.requestLogs || !(a.status?.sandboxes ?? []).some((s) => s.kind === 'dataApi')) return null;
    try {
      return dataApiUsage(await this.requestLogs.read(a, { limit: 10_000 }));
    } catch {
      // A signal, not the scorecard: an unreadable log is reported as such, never a failed page.
      return dataApiUsage([{ sandbox: '', available: false, items: [] }]);
    }
  }

  /** `withDataApi`: also ask the data API sandboxes for their logs (one request each). */
  async of(a: AssessmentObject, now = new Date(), withDataApi = false): Promise<Scorecard> {
    const t = this.store.templateOf(a);
    const tasks = (t?.spec.tasks ?? []).map((task) => ({
      id: task.id,
      points: task.points,
      manual: gradingOf(task).kind === 'manual',
    }));
    const [submissions, interview, dataApi] = await Promise.all([
      this.grading.list(a),
      this.interviews.scoresOf(a),
      withDataApi ? this.dataApiOf(a) : null,
    ]);
    const limit = t ? durationMs(a.spec.duration ?? t.spec.duration) : undefined;
    return scorecardOf(a, submissions, interview, now, limit, tasks, dataApi);
  }

  /** Every assessment of a team, by name. */
  team(team: string): Promise<Scorecard[]> {
    const inTeam = this.store.assessments
      .list()
      .filter((a) => a.metadata.namespace === team)
      .sort((x, y) => x.metadata.name!.localeCompare(y.metadata.name!));
    return Promise.all(inTeam.map((a) => this.of(a)));
  }

  /**
   * Answers that look alike between candidates of the same template in a team: a signal for a
   * reviewer (see similarity.ts), never a grade.
   */
  async similarAnswers(team: string, threshold?: number): Promise<SimilarPair[]> {
    const inTeam = this.store.assessments.list().filter((a) => a.metadata.namespace === team);
    const answers: AnswerForComparison[] = [];
    for (const a of inTeam) {
      const tasks = this.store.templateOf(a)?.spec.tasks ?? [];
      for (const s of await this.grading.list(a)) {
        const task = tasks.find((x) => x.id === s.spec.task);
        if (!task) continue;
        answers.push({
          assessment: a.metadata.name!,
          candidate: a.spec.candidate.name,
          template: a.spec.templateRef.name,
          task: task.id,
          kind: gradingOf(task).kind === 'mongo' ? 'pipeline' : 'sql',
          answer: s.spec.answer,
        });
      }
    }
    return similarPairs(answers, threshold);
  }

  /** Every assessment of a team, one line each. */
  async csv(team: string): Promise<string> {
    return toCsv(await this.team(team));
  }
}

const CSV_COLUMNS = [
  'assessment',
  'candidate',
  'template',
  'phase',
  'auto',
  'auto_max',
  'manual',
  'manual_max',
  'to_review',
  'interview',
  'interview_max',
  'total',
  'total_max',
  'started_at',
  'time_used_seconds',
] as const;

/** RFC 4180 CSV; cells that a spreadsheet would run as a formula are quoted with a leading '. */
export function toCsv(cards: Scorecard[]): string {
  const cell = (v: unknown) => {
    let s = v === null || v === undefined ? '' : String(v);
    if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  const rows = cards.map((c) =>
    [
      c.assessment,
      c.candidate,
      c.template,
      c.phase,
      c.auto.earned,
      c.auto.max,
      c.manual.earned,
      c.manual.max,
      c.manual.toReview,
      c.interview.earned,
      c.interview.max,
      c.total.earned,
      c.total.max,
      c.startedAt,
      c.timeUsedSeconds,
    ].map(cell),
  );
  return `${[CSV_COLUMNS.join(','), ...rows.map((r) => r.join(','))].join('\r\n')}\r\n`;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Scorecards: auto, manual and interview points per assessment; a team's as CSV. */
    scorecards: Scorecards;
  }
}

/** `app.scorecards`. */
export default fp(
  async function scorecardsPlugin(app: FastifyInstance) {
    app.decorate('scorecards', new Scorecards(app.assessments, app.grading, app.interviews, app.requestLogs));
  },
  { name: 'scorecards', dependencies: ['assessments', 'grading', 'interviews', 'request-logs'] },
);
