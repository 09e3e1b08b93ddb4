/**
 * Targeted abuse: insults, hatred and threats aimed at a person or a group ("you are a ...",
 * "I hate them", "they should all be shot", "kill yourself"), read by rules over a few
 * neighbouring tokens; a negation between the target and the word cancels it. The offline
 * toxicity model (toxicity-model.ts) combines their score with its own. Word lists in
 * targeted-abuse-words.ts. Pure: no I/O, deterministic.
 */
import {
  ANGER_WORDS,
  COMPARISON_NEXT,
  COPULA,
  FUSED_TARGET_COPULA,
  GROUP_DETERMINERS,
  GROUPS,
  HATE_NOUNS,
  HATE_VERBS,
  NEGATORS,
  OBJECT_PRONOUNS,
  PASSIVE_AUX,
  PASSIVE_HARMS,
  POSSESSIVES,
  PREDICATE_FILLERS,
  IMPERATIVE_LEADS,
  IMPERATIVE_THREATS,
  INTENSIFIED,
  KIN_NOUNS,
  KIN_OWNERS,
  REFLEXIVES,
  SPEAKER_CUES,
  STATE_WORDS,
  SUFFER_VERBS,
  TARGET_OTHER,
  TARGET_YOU,
  WISH_CUES,
  THREAT_PHRASES,
  CLOSING_THREATS,
  THREAT_STARTS,
  VICTIM_NOUNS,
} from './targeted-abuse-words.js';
import { HARM_VERBS, INSULTS } from './toxicity-lexicon.js';
import { own } from './toxicity-text.js';

/** Letters of a word in sorted order: the key under which transposed spellings ("klil", "deaht") meet. */
function anagramKey(w: string): string {
  return [...w].sort().join('');
}
const ANAGRAMS = new Map<string, string>();
for (const w of [...Object.keys(INSULTS), ...Object.keys(HARM_VERBS)]) if (w.length >= 4) ANAGRAMS.set(`${w[0]}:${anagramKey(w)}`, w);

/** The listed insult or harm word a token spells with two letters swapped ("suffre" -> "suffer"), if any. */
const UNSCRAMBLED = new Map<string, string>();

export function unscramble(tok: string): string {
  let u = UNSCRAMBLED.get(tok);
  if (u === undefined) {
    u = unscrambleUncached(tok);
    if (UNSCRAMBLED.size >= 100_000) UNSCRAMBLED.clear();
    UNSCRAMBLED.set(tok, u);
  }
  return u;
}

function unscrambleUncached(tok: string): string {
  if (tok.length < 4 || own(INSULTS, tok) !== undefined || own(HARM_VERBS, tok) !== undefined) return tok;
  const w = ANAGRAMS.get(`${tok[0]}:${anagramKey(tok)}`);
  if (w === undefined) return tok;
  let diff = 0;
  for (let i = 0; i < tok.length; i++) if (tok[i] !== w[i]) diff++;
  return diff === 2 ? w : tok;
}

export interface TargetedAbuse {
  score: number;
  kind: 'insult' | 'group insult' | 'hatred' | 'threat' | 'none';
}

/** Strength of a word as an insult (0 when it is none): the insult list, else strong VADER negativity. */
function insultStrength(tok: string, negative: Readonly<Record<string, number>>): number {
  const i = own(INSULTS, tok);
  if (i !== undefined) return i;
  if (STATE_WORDS.has(tok)) return 0;
  const v = own(negative, tok);
  return v !== undefined && v <= -1.8 ? Math.min(0.9, -v / 3.2) : 0;
}

function isPerson(t: string | undefined): boolean {
  return t !== undefined && (TARGET_YOU.has(t) || TARGET_OTHER.has(t));
}

/**
 * Whether a person is the object after the harm verb at `i`: a person or object pronoun within three
 * tokens, or a possessive followed by someone or their body, kin, pet, home or life.
 */
function personObjectAfter(tokens: readonly string[], i: number): boolean {
  for (let k = i + 1; k < Math.min(tokens.length, i + 4); k++) {
    const t = tokens[k] as string;
    if (POSSESSIVES.has(t)) return tokens.slice(k + 1, k + 4).some((n) => VICTIM_NOUNS.has(n) || GROUPS.has(n) || isPerson(n));
    // Not the first object of two: "shoot you a message", "hit him a ball".
    if (isPerson(t) || OBJECT_PRONOUNS.has(t)) return tokens[k + 1] !== 'a' && tokens[k + 1] !== 'an';
  }
  return false;
}

/**
 * Whether a group of people is the object of the order at `i` ("gas the jews", "kill all
 * immigrants"): a group within three tokens, only articles and quantifiers before it, and not
 * the first object of two ("shoot the fans a message").
 */
function groupObjectAfter(tokens: readonly string[], i: number): boolean {
  for (let k = i + 1; k < Math.min(tokens.length, i + 4); k++) {
    const t = tokens[k] as string;
    if (GROUPS.has(t)) return tokens[k + 1] !== 'a' && tokens[k + 1] !== 'an';
    if (!GROUP_DETERMINERS.has(t)) return false;
  }
  return false;
}

/**
 * A passive participle coordinated with an earlier one: "be lined up and shot", "get caught and
 * hanged" (an auxiliary within four tokens before the "and" just before `i`).
 */
function coordinatedPassive(tokens: readonly string[], i: number): boolean {
  return tokens[i - 1] === 'and' && tokens.slice(Math.max(0, i - 6), i - 1).some((t) => PASSIVE_AUX.has(t));
}

/** Someone wished to harm a person: "I hope someone shoots you", "wish he stabs you" (the -s form after a wish and its subject). */
const THIRD_PERSON_SUBJECTS = new Set(['someone', 'somebody', 'he', 'she', 'they', 'anyone', 'anybody', 'everyone', 'everybody']);
/** Words announcing what the speaker is about to do. */
const ANNOUNCING = new Set(['will', 'll', 'ill', 'gonna', 'shall']);
function wishedThirdPerson(tokens: readonly string[], i: number): number | undefined {
  const tok = tokens[i] as string;
  if (tok.length < 4 || !tok.endsWith('s') || !THIRD_PERSON_SUBJECTS.has(tokens[i - 1] as string)) return undefined;
  if (!WISH_CUES.has(tokens[i - 2] as string) && !(tokens[i - 2] === 'that' && WISH_CUES.has(tokens[i - 3] as string))) return undefined;
  // "beats you" after a wish is mostly about winning ("I hope everyone beats you in the race").
  if (tok === 'beats') return undefined;
  return own(HARM_VERBS, tok.endsWith('es') ? tok.slice(0, -2) : tok.slice(0, -1)) ?? own(HARM_VERBS, tok.slice(0, -1));
}

function negatedBetween(tokens: readonly string[], from: number, to: number): boolean {
  for (let k = Math.max(0, from); k < to; k++) if (NEGATORS.has(tokens[k] as string)) return true;
  return false;
}

/**
 * Insults said of someone ("you are a ...", "they are so ...", "you idiot", "what a loser you
 * are", "losers like you"), hatred declared at someone ("I hate you", "I can't stand them") and
 * threats ("I will hurt you", "they should all be shot", "kill yourself"). A negation between the
 * target and the word ("you are not stupid", "I don't hate you") cancels it. Pure.
 */
export function targetedAbuse(input: readonly string[], negative: Readonly<Record<string, number>>): TargetedAbuse {
  let best: TargetedAbuse = { score: 0, kind: 'none' };
  let tokens = input;
  const take = (score: number, kind: TargetedAbuse['kind']) => {
    if (score > best.score) best = { score, kind };
  };
  tokens = tokens.map(unscramble);
  if (tokens.some((t) => THREAT_STARTS.has(t))) {
    const joined = ` ${tokens.join(' ')} `;
    /** The word after the phrase found at or after `from` in `joined` (read up to the next space only: linear in the matches). */
    const wordAfter = (phrase: string, from: number) => {
      const start = joined.indexOf(` ${phrase} `, from) + phrase.length + 2;
      const end = joined.indexOf(' ', start);
      return joined.slice(start, end < 0 ? undefined : end);
    };
    for (const [phrase, w] of THREAT_PHRASES) {
      for (let at = joined.indexOf(` ${phrase} `); at >= 0; at = joined.indexOf(` ${phrase} `, at + 1)) {
        if (!COMPARISON_NEXT.has(wordAfter(phrase, at))) take(w, 'threat');
      }
    }
    for (const [phrase, w] of CLOSING_THREATS) if (joined.endsWith(` ${phrase} `)) take(w, 'threat');
    for (const [phrase, w] of IMPERATIVE_THREATS) {
      const at = joined.startsWith(` ${phrase} `) ? 0 : Math.max(...IMPERATIVE_LEADS.map((lead) => joined.indexOf(` ${lead} ${phrase} `)));
      // "drop dead gorgeous": the phrase as an intensifier of the next word.
      if (at >= 0 && !INTENSIFIED.has(wordAfter(phrase, at))) take(w, 'threat');
    }
  }
  const hasYou = tokens.some((t) => TARGET_YOU.has(t));
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i] as string;
    const strength = insultStrength(tok, negative);
    if (strength > 0) {
      // "<target> <copula> ... <insult>" within five tokens, or a fused "youre/hes ... <insult>".
      for (let j = i - 1; j >= Math.max(0, i - 5); j--) {
        const t = tokens[j] as string;
        // The target: a person, or someone's kin or face ("your husband is a despicable person").
        const kin = j > 1 && KIN_NOUNS.has(tokens[j - 1] as string) && KIN_OWNERS.has(tokens[j - 2] as string);
        const cop = COPULA.has(t) && j > 0 && (TARGET_YOU.has(tokens[j - 1] as string) || TARGET_OTHER.has(tokens[j - 1] as string) || kin);
        const fused = FUSED_TARGET_COPULA.has(t);
        if (!cop && !fused) continue;
        const target = fused ? t : kin ? (tokens[j - 2] === 'your' || tokens[j - 2] === 'ur' ? 'you' : 'he') : (tokens[j - 1] as string);
        if (negatedBetween(tokens, j, i)) break;
        // A negative word outside the insult list is an insult only said of the target directly
        // ("you are so pathetic"), not deeper in the phrase ("she was a victim of harassment").
        if (own(INSULTS, tok) === undefined && !tokens.slice(j + 1, i).every((b) => PREDICATE_FILLERS.has(b))) break;
        const you = TARGET_YOU.has(target);
        take(you ? strength : 0.9 * strength, you || !GROUPS.has(target) ? 'insult' : 'group insult');
        break;
      }
      // Vocative: "you idiot", "you absolute moron".
      if (own(INSULTS, tok) !== undefined) {
        for (let j = i - 1; j >= Math.max(0, i - 2); j--)
          if (TARGET_YOU.has(tokens[j] as string) && !COPULA.has(tokens[j + 1] as string)) take(strength, 'insult');
      }
      // "what a loser you are", "such a creep": exclamations about someone addressed, or about
      // someone named right after ("what a contemptuous clown he is").
      const saidOf = TARGET_OTHER.has(tokens[i + 1] as string) && COPULA.has(tokens[i + 2] as string);
      if (
        (hasYou || saidOf) &&
        i >= 2 &&
        (tokens[i - 2] === 'what' || tokens[i - 2] === 'such' || tokens[i - 1] === 'such' || tokens[i - 3] === 'what') &&
        !negatedBetween(tokens, i - 3, i)
      )
        take(strength, 'insult');
      // "<insult> like you/them".
      if (tokens[i + 1] === 'like' && (TARGET_YOU.has(tokens[i + 2] as string) || TARGET_OTHER.has(tokens[i + 2] as string)))
        take(strength, 'insult');
    }
    // Hatred declared at someone: "I hate you", "we despise them", "I can't stand her".
    const hateVerb =
      HATE_VERBS.has(tok) ||
      (tok === 'stand' && (tokens[i - 1] === 't' || tokens[i - 1] === 'cant') && (tokens[i - 2] === 'can' || tokens[i - 1] === 'cant'));
    if (hateVerb) {
      const subj = tokens.slice(Math.max(0, i - 4), i).some((t) => t === 'i' || t === 'we');
      const obj = tokens.slice(i + 1, i + 4).some((t) => TARGET_YOU.has(t) || TARGET_OTHER.has(t));
      const neg = tok === 'stand' ? negatedBetween(tokens, i - 5, i - 2) : negatedBetween(tokens, i - 3, i);
      if (subj && obj && !neg) take(0.85, 'hatred');
    }
    // "you make me sick", "these people disgust me", "hatred for you", "contempt for them".
    if (
      ANGER_WORDS.has(tok) &&
      tokens[i - 1] === 'me' &&
      /^make|^made/.test(tokens[i - 2] ?? '') &&
      tokens.slice(Math.max(0, i - 6), i - 2).some(isPerson)
    )
      take(0.8, 'hatred');
    if ((tok === 'disgust' || tok === 'disgusts') && tokens[i + 1] === 'me' && tokens.slice(Math.max(0, i - 3), i).some(isPerson))
      take(0.8, 'hatred');
    if (HATE_NOUNS.has(tok) && tokens[i + 1] === 'for' && tokens.slice(i + 2, i + 5).some(isPerson) && !negatedBetween(tokens, i - 3, i))
      take(0.8, 'hatred');
    // Threats: a harm verb with a person as object and a speaker cue before it ("I will hurt
    // you", "I will break your legs", not "this will break your build"), or a person, then a cue,
    // then the verb said of that person as its victim ("they should all be shot", "you deserve to
    // die", "he should kill himself"; not "you should kill the process" or "shoot for 80 %"), or
    // a wish, then the person ("I hope you get shot", "I hope your family dies", "I hope you get
    // hit by a bus").
    const harm =
      own(HARM_VERBS, tok) ??
      (PASSIVE_AUX.has(tokens[i - 1] as string) || coordinatedPassive(tokens, i) ? own(PASSIVE_HARMS, tok) : undefined) ??
      wishedThirdPerson(tokens, i);
    if (harm !== undefined) {
      // The cue within five tokens, or further back when the verb is the second of an announced
      // pair ("I will find where you live and hurt you").
      const cueBefore =
        tokens.slice(Math.max(0, i - 5), i).some((t) => SPEAKER_CUES.has(t)) ||
        (tokens[i - 1] === 'and' && tokens.slice(Math.max(0, i - 9), i - 1).some((t) => ANNOUNCING.has(t)));
      if (cueBefore && personObjectAfter(tokens, i) && !negatedBetween(tokens, i - 4, i)) take(harm, 'threat');
      // An order of violence against a group, without a speaker cue: the verb starts the sentence
      // or follows "go", "just" or "please" ("gas the jews"; not "kill the process").
      const ordered = i === 0 || IMPERATIVE_LEADS.includes(tokens[i - 1] as string);
      if (ordered && harm >= 0.8 && groupObjectAfter(tokens, i)) take(harm, 'threat');
      const coordinated = coordinatedPassive(tokens, i);
      const victimSubject =
        SUFFER_VERBS.has(tok) ||
        PASSIVE_AUX.has(tokens[i - 1] as string) ||
        coordinated ||
        (tokens[i - 1] === 'all' && PASSIVE_AUX.has(tokens[i - 2] as string)) ||
        REFLEXIVES.has(tokens[i + 1] as string);
      // The victim within six tokens before (eight before a coordinated passive: "they should all be rounded up and shot").
      for (let j = i - 1; victimSubject && j >= Math.max(0, i - (coordinated ? 8 : 6)); j--) {
        const t = tokens[j] as string;
        // The victim: a person, or someone's kin or body ("your family", "his kids").
        const owned = VICTIM_NOUNS.has(t) && POSSESSIVES.has(tokens[j - 1] as string);
        if (!(TARGET_YOU.has(t) || TARGET_OTHER.has(t) || owned)) continue;
        const before = owned ? j - 1 : j;
        const between = tokens.slice(j + 1, i);
        const wished =
          WISH_CUES.has(tokens[before - 1] as string) || (tokens[before - 1] === 'that' && WISH_CUES.has(tokens[before - 2] as string));
        if ((wished || between.some((b) => SPEAKER_CUES.has(b))) && !between.some((b) => NEGATORS.has(b))) {
          take(harm, 'threat');
          break;
        }
      }
    }
  }
  return best;
}
