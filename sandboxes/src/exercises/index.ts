import { MONGO_EXERCISES } from './mongo.ts';
import { SQL_EXERCISES } from './sql.ts';
import type { Exercise } from './types.ts';

export type { Exercise } from './types.ts';
export const EXERCISES: Exercise[] = [...SQL_EXERCISES, ...MONGO_EXERCISES];

export function findExercise(id: string): Exercise {
  const e = EXERCISES.find((x) => x.id === id);
  if (!e) throw new Error(`unknown exercise "${id}"; see \`epreuve-sandbox exercises\` for the catalogue`);
  return e;
}
