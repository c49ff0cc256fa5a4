import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';

/** Interview question banks, shipped as data (YAML beside this file); reviewer-only. */
export const guideSchema = z.object({
  id: z.string().regex(/^[a-z0-9-]+$/),
  title: z.string().min(1),
  language: z.string().min(2),
  source: z.string().optional(),
  scale: z.string().optional(),
  sections: z
    .array(
      z.object({
        title: z.string().min(1),
        questions: z.array(
          z.object({
            id: z
              .string()
              .regex(/^[a-z0-9-]+$/)
              .max(63),
            question: z.string().min(1),
            topic: z.string().optional(),
            answer: z.string().min(1),
          }),
        ),
      }),
    )
    .min(1),
});
export type Guide = z.infer<typeof guideSchema>;

let cache: Map<string, Guide> | undefined;

/** Loads and validates every guide once; a malformed file stops the API at start, named. */
export function guides(dir = import.meta.dirname): Map<string, Guide> {
  if (cache && dir === import.meta.dirname) return cache;
  const out = new Map<string, Guide>();
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    const res = guideSchema.safeParse(parse(readFileSync(join(dir, file), 'utf8')));
    if (!res.success)
      throw new Error(
        `interview guide ${file} is invalid: ${res.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      );
    const ids = res.data.sections.flatMap((s) => s.questions.map((q) => q.id));
    const dupe = ids.find((id, i) => ids.indexOf(id) !== i);
    if (dupe) throw new Error(`interview guide ${file} repeats question id ${dupe}`);
    out.set(res.data.id, res.data);
  }
  if (dir === import.meta.dirname) cache = out;
  return out;
}

export function questionIds(g: Guide): string[] {
  return g.sections.flatMap((s) => s.questions.map((q) => q.id));
}
