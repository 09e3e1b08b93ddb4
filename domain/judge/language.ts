/**
 * Whether a Latin-script text is written in a language other than English, for the offline
 * toxicity check, which reads English only. Pure.
 *
 * The language is read by franc-min (trigram profiles of 82 languages, MIT). It guesses poorly on
 * a few words, on names and on English slang, so a text counts as another language only when all
 * of these hold: it has at least six words once capitalised words (names), mentions, hashtags and
 * links are left out; fewer than two of its words are common English function words ("the",
 * "you", "with", ...; none of them common in the other Latin-script languages); and franc ranks a
 * language other than English first, with English's score (relative to the first's) under 0.6, or
 * 0.7 from eight such words on; or, in a text without English function words, two distinct
 * function words of one other language (FOREIGN_FUNCTION_WORDS). Measured on the shipped data: 3 of
 * 4,507 HaluEval general responses (written in French and Spanish), none of 1,500 HaluEval QA
 * answers and passages, 860 OLID tweets, 587 Ethos comments and 46
 * Jigsaw comments, and 4 of the first 4,614 Davidson tweets (one in Spanish, one in Dutch, two in
 * slang) count as another language; 12 of 14 hand-written Spanish, French, German, Portuguese,
 * Italian, Dutch, Indonesian, Turkish and Polish sentences do (German, whose nouns are
 * capitalised, can keep too few words; the 14th is flagged by the English model anyway).
 */
import { francAll } from 'franc-min';

const ENGLISH_FUNCTION_WORDS = new Set([
  ...['the', 'and', 'you', 'your', 'that', 'this', 'what', 'with', 'are', 'it', 'they', 'he', 'she', 'have', 'not', 'for'],
  ...['my', 'was', 'were', 'will', 'would', 'can', 'just', 'about', 'like', 'when', 'get', 'got', 'how', 'why', 'all'],
  ...['who', 'u', 'ur', 'im', 'dont', 'lol', 'its', 'be', 'been', 'if', 'or', 'but', 'from', 'out', 'up', 'at', 'there'],
  ...['their', 'them', 'his', 'her', 'our', 'an', 'by', 'on', 'of'],
]);

/**
 * Function words of other Latin-script languages that are no English word, name or slang: two
 * distinct ones of a language in a text without English function words name it, however short the
 * text or however many of its words are capitalised (German nouns: "Die Hauptstadt von
 * Deutschland ist Berlin.").
 */
const FOREIGN_FUNCTION_WORDS: Record<string, ReadonlySet<string>> = {
  deu: new Set(['ist', 'und', 'nicht', 'ein', 'eine', 'einen', 'einem', 'das', 'von', 'mit', 'auf', 'für', 'sich', 'auch']),
  nld: new Set(['het', 'een', 'niet', 'wordt', 'voor', 'ook', 'maar', 'naar', 'bij', 'deze', 'worden', 'heeft', 'zijn', 'geen']),
  fra: new Set(['est', 'les', 'des', 'une', 'pour', 'avec', 'dans', 'sont', 'être', 'mais', 'cette', 'nous', 'vous', 'aussi']),
  spa: new Set(['es', 'los', 'las', 'una', 'para', 'del', 'está', 'pero', 'muy', 'también', 'esta', 'este', 'tiene', 'hay']),
  ita: new Set(['della', 'che', 'sono', 'gli', 'degli', 'è', 'anche', 'nel', 'alla', 'questo', 'questa', 'molto', 'delle', 'sua']),
  por: new Set(['não', 'é', 'uma', 'são', 'mais', 'também', 'dos', 'das', 'muito', 'está', 'tem', 'isso', 'essa', 'esse']),
};

/** The ISO 639-3 code of the language a text is written in when that is clearly not English, else undefined. */
export function otherLanguageOf(text: string): string | undefined {
  const words = text.toLowerCase().match(/\p{L}+/gu) ?? [];
  let english = 0;
  for (const w of words) if (ENGLISH_FUNCTION_WORDS.has(w) && ++english >= 2) return undefined;
  if (english === 0) {
    for (const [lang, set] of Object.entries(FOREIGN_FUNCTION_WORDS)) {
      if (new Set(words.filter((w) => set.has(w))).size >= 2) return lang;
    }
  }
  const plain = text
    .replace(/[@#]\S+|https?:\/\/\S+/g, ' ')
    .replace(/\b\p{Lu}[\p{L}'’-]*/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  const n = plain.match(/\p{L}+/gu)?.length ?? 0;
  if (n < 6) return undefined;
  const ranked = francAll(plain, { minLength: 10 });
  const [top] = ranked[0] ?? ['und'];
  const englishScore = ranked.find(([lang]) => lang === 'eng')?.[1] ?? 0;
  return top !== 'eng' && top !== 'und' && englishScore < (n >= 8 ? 0.7 : 0.6) ? top : undefined;
}
