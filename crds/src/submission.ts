import { z } from 'zod';
import { cel, dnsLabel, type ObjectMeta, timestamp } from './common.ts';
import type { API_VERSION } from './names.ts';

/**
 * One answer a candidate submitted to one task, and its grade. Submissions live in the team
 * namespace, owned by their Assessment (deleted with it, kept after it expires, for reviewers).
 * The spec is an immutable record.
 */
export const submissionSpec = cel(
  z
    .object({
      assessmentRef: z
        .object({ name: dnsLabel(63).describe('Name of the Assessment, in the same namespace.') })
        .describe('The assessment answered.'),
      task: dnsLabel(63).describe('Task id, from the template.'),
      answer: z.string().max(20000).describe('The answer as submitted: SQL, a JSON pipeline, or text.'),
      submittedAt: timestamp().describe('When the candidate submitted it.'),
    })
    .describe('What the candidate submitted.'),
  { rule: 'self == oldSelf', message: 'a submission is an immutable record' },
);

export const submissionStatus = z
  .object({
    graded: z
      .boolean()
      .describe('Whether a grade was given (automatically, or by a reviewer for manual tasks).'),
    pass: z.boolean().optional().describe('Whether the answer matches the reference.'),
    explanation: z
      .string()
      .max(4000)
      .optional()
      .describe('What differs from the reference, for staff: the full diff, expected values included.'),
    hint: z
      .string()
      // A check task's hint lists each failing check with its own hint.
      .max(4000)
      .optional()
      .describe(
        'What kind of mistake it is, for the candidate: columns by name, too many or too few rows, order, NULLs — never a value of the reference.',
      ),
    hintFr: z
      .string()
      .max(4000)
      .optional()
      .describe('The hint in French, shown to a candidate whose page speaks French.'),
    error: z
      .string()
      .max(64)
      .optional()
      .describe('Why the answer could not run (Timeout, NotAQuery, …), when it could not.'),
    points: z.number().int().min(0).max(100).optional().describe('Points earned.'),
    gradedAt: timestamp().optional().describe('When it was graded.'),
    gradedBy: z
      .string()
      .max(253)
      .optional()
      .describe('The reviewer who graded it by hand (absent for automatic grades).'),
  })
  .describe('The grade.');

export type SubmissionSpec = z.infer<typeof submissionSpec>;
export type SubmissionStatus = z.infer<typeof submissionStatus>;
export interface Submission {
  apiVersion: typeof API_VERSION;
  kind: 'Submission';
  metadata: ObjectMeta;
  spec: SubmissionSpec;
  status?: SubmissionStatus;
}
