/**
 * Text budgets applied before judging. Pure and deterministic: safe to import from workflow code.
 */
import { TEXT_BUDGET, type JudgeInput } from '../../common/types.js';

const marker = (cutChars: number) => ` [...truncated ${cutChars} chars]`;

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isWhitespace(ch: string | undefined): boolean {
  return ch !== undefined && /\s/.test(ch);
}

/**
 * Cut `text` to at most `budget` characters (UTF-16 code units), marker included, when it is longer.
 * The cut lands on a whitespace boundary when one exists in the last 20 % of the kept text,
 * never splits a surrogate pair, and the result ends with " [...truncated N chars]" where N is
 * the number of characters removed. Texts within the budget are returned unchanged.
 * (A budget smaller than the marker itself yields just the marker.)
 */
export function truncateText(text: string, budget: number): { text: string; cutChars: number } {
  if (text.length <= budget) return { text, cutChars: 0 };
  // The marker can only get shorter than this (N < text.length), so the result fits the budget.
  const maxMarkerLength = marker(text.length).length;
  let keep = Math.max(0, budget - maxMarkerLength);
  if (keep > 0 && isHighSurrogate(text.charCodeAt(keep - 1))) keep--;
  let head = text.slice(0, keep);
  if (!isWhitespace(text[keep])) {
    // We are inside a word: back up to the last whitespace, if it is not too far back.
    const minKeep = Math.floor(keep * 0.8);
    for (let i = head.length - 1; i >= minKeep && i > 0; i--) {
      if (isWhitespace(head[i])) {
        head = head.slice(0, i);
        break;
      }
    }
  }
  head = head.trimEnd();
  const cutChars = text.length - head.length;
  return { text: head + marker(cutChars), cutChars };
}

/** Apply `TEXT_BUDGET` per field. `truncated` is true when any field was cut. */
export function truncateForJudge(i: { prompt: string; response: string; context?: string }): {
  input: JudgeInput;
  truncated: boolean;
} {
  const prompt = truncateText(i.prompt, TEXT_BUDGET.prompt);
  const response = truncateText(i.response, TEXT_BUDGET.response);
  const input: JudgeInput = { prompt: prompt.text, response: response.text };
  let truncated = prompt.cutChars > 0 || response.cutChars > 0;
  if (i.context !== undefined) {
    const context = truncateText(i.context, TEXT_BUDGET.context);
    input.context = context.text;
    truncated ||= context.cutChars > 0;
  }
  return { input, truncated };
}
