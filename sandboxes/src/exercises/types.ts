/** An exercise from the catalogue: what the candidate reads, and how an answer is graded. */
export interface Exercise {
  id: string;
  kind: 'sql' | 'mongo';
  dataset: string;
  difficulty: 'easy' | 'medium' | 'hard';
  /** What the exercise practises, e.g. RANK, anti join. */
  topics: string[];
  title: { en: string; fr: string };
  prompt: { en: string; fr: string };
  /** The reference answer: SQL, or a JSON aggregation pipeline. Never shown to candidates. */
  reference: string;
  /** For Mongo exercises: the collection the pipeline runs on. */
  collection?: string;
  grader: { orderMatters: boolean; numericTolerance: number; ignoreColumnNames: boolean };
  /** A question a reviewer grades by hand: `reference` is then the model answer, `rubric` what to look for. */
  manual?: { rubric: string };
  /** Plausible wrong answers, each with what the explanation must mention (tests use them). */
  wrongAnswers: Array<{ answer: string; explains: RegExp }>;
}
