import { describe, expect, it } from 'vitest';
import { cutText, MAX_GRADE_TEXT } from './contracts.ts';

describe('cutText', () => {
  it('leaves a text within the bound as it is', () => {
    expect(cutText('short')).toBe('short');
    const exact = 'x'.repeat(MAX_GRADE_TEXT);
    expect(cutText(exact)).toBe(exact);
  });

  it('cuts a longer text to the bound, an ellipsis last', () => {
    const cut = cutText('y'.repeat(3_000_000));
    expect(cut).toHaveLength(MAX_GRADE_TEXT);
    expect(cut.endsWith('y…')).toBe(true);
    expect(cutText('abcdefgh', 5)).toBe('abcd…');
  });

  it('never leaves half a surrogate pair before the ellipsis', () => {
    // 'a' then emoji (two UTF-16 units each): a cut at 4 units would split the second emoji.
    const cut = cutText('a😀😀😀', 5);
    expect(cut).toBe('a😀…');
    expect(() => encodeURIComponent(cut)).not.toThrow();
  });
});
