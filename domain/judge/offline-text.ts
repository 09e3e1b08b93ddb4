/**
 * Text processing shared by the offline judge's checks (offline-judge.ts describes the rules):
 * sentences, tokens (words, numbers, names), the light stemmer, stop words, content words and the
 * vocabularies a response word is "supported" by; and the bounds of the judge's outputs (scores
 * clamped to [0, 1] and rounded to 4 decimals, reasoning texts capped). Pure, no I/O.
 */

export function clamp01(x: number): number {
  if (!Number.isFinite(x)) return 0;
  return Math.min(1, Math.max(0, x));
}

/** Reasoning texts are bounded by the schema (4,000 characters). */
export function cap(text: string): string {
  return text.length <= 4000 ? text : `${text.slice(0, 3999)}…`;
}

export function r4(x: number): number {
  return Math.round(clamp01(x) * 10000) / 10000;
}

const STOP_WORDS = new Set(
  (
    'a about above after again against all also am an and any are aren as at be because been before being below ' +
    'between both but by can cannot could couldn did didn do does doesn doing don down during each few for from ' +
    'further had hadn has hasn have haven having he her here hers herself him himself his how i if in into is isn ' +
    'it its itself just let me more most mustn my myself no nor not now of off on once only or other ought our ours ' +
    'ourselves out over own same shan she should shouldn so some such than that the their theirs them themselves ' +
    'then there these they this those through to too under until up upon very was wasn we were weren what when ' +
    'where which while who whom whose why will with won would wouldn you your yours yourself yourselves ' +
    's t d ll m re ve y yes okay ok also however therefore thus etc e g ie eg may might must shall ' +
    'one ones many much lot lots well like get got make made use used using way ways thing things something ' +
    'anything everything nothing really actually please thank thanks sure answer question following based ' +
    'give given provide provided including include includes within without across along among around percent per cent ' +
    // What a chat answer says about itself rather than about the world ("Sure! Based on the
    // context provided, here is the answer.", "Great question.", "*Source: the passage.*").
    'context passage source sources information great happy glad help helps hope certainly absolutely course ' +
    'briefly indeed mentioned according states stated either ' +
    // Currency names: the amount is the claim ("5 million dollars" for "$5 million").
    'dollar dollars usd euro euros eur'
  ).split(/\s+/),
);

const NUMBER_WORDS: Record<string, string> = {
  zero: '0',
  one: '1',
  two: '2',
  three: '3',
  four: '4',
  five: '5',
  six: '6',
  seven: '7',
  eight: '8',
  nine: '9',
  ten: '10',
  eleven: '11',
  twelve: '12',
  thirteen: '13',
  fourteen: '14',
  fifteen: '15',
  sixteen: '16',
  seventeen: '17',
  eighteen: '18',
  nineteen: '19',
  twenty: '20',
  thirty: '30',
  forty: '40',
  fifty: '50',
  sixty: '60',
  seventy: '70',
  eighty: '80',
  ninety: '90',
};

/** Units, spelled out or abbreviated, and the one key each is compared by. */
const UNITS: Record<string, string> = {
  km: 'km',
  kilometre: 'km',
  kilometres: 'km',
  kilometer: 'km',
  kilometers: 'km',
  cm: 'cm',
  centimetre: 'cm',
  centimetres: 'cm',
  centimeter: 'cm',
  centimeters: 'cm',
  mm: 'mm',
  millimetre: 'mm',
  millimetres: 'mm',
  millimeter: 'mm',
  millimeters: 'mm',
  metre: 'metre',
  metres: 'metre',
  meter: 'metre',
  meters: 'metre',
  kg: 'kg',
  kilogram: 'kg',
  kilograms: 'kg',
  kilo: 'kg',
  kilos: 'kg',
  mi: 'mile',
  mile: 'mile',
  miles: 'mile',
  ft: 'foot',
  foot: 'foot',
  feet: 'foot',
  lb: 'lb',
  lbs: 'lb',
  mph: 'mph',
  kph: 'kmh',
  kmh: 'kmh',
};

/**
 * Light suffix stemmer, applied identically to every text, so only consistency matters. British
 * and American spellings meet (colour/color, centre/center, organise/organize, analyse/analyze),
 * and units have one key whether spelled out or abbreviated (kilometres/km).
 */
export function stem(word: string): string {
  const unit = UNITS[word.toLowerCase()];
  if (unit !== undefined) return unit;
  let w = word
    .toLowerCase()
    .replace(/['’]s$/, '')
    .replace(/['’]/g, '');
  if (w.length > 5)
    w = w
      .replace(/our(s|ed|ing|ite|ites|able)?$/, 'or$1')
      .replace(/tre(s|d)?$/, 'ter$1')
      .replace(/([iy])s(e|es|ed|ing|ation|ations)$/, '$1z$2');
  if (w.length > 4 && w.endsWith('ies')) w = w.slice(0, -3) + 'y';
  else if (w.length > 4 && /(sses|xes|ches|shes|zes)$/.test(w)) w = w.slice(0, -2);
  else if (w.length > 3 && w.endsWith('s') && !/(ss|us|is)$/.test(w)) w = w.slice(0, -1);
  if (w.length > 5 && w.endsWith('ing')) w = w.slice(0, -3);
  else if (w.length > 4 && w.endsWith('ed')) w = w.slice(0, -2);
  else if (w.length > 5 && w.endsWith('ly')) w = w.slice(0, -2);
  if (w.length > 3 && /([b-df-hj-np-tv-z])\1$/.test(w)) w = w.slice(0, -1);
  if (w.length > 4 && w.endsWith('e')) w = w.slice(0, -1);
  return w;
}

export type TokKind = 'word' | 'number' | 'name';
export interface Tok {
  raw: string;
  key: string; // stem for words/names, canonical digits for numbers
  kind: TokKind;
  stop: boolean;
  sentence: number;
  /**
   * A number's quantity in a base unit when a metric unit follows it ("1.2 km" and "1,200 metres":
   * "1200metre"); such a number is supported by its quantity only.
   */
  alt?: string;
}

const TOKEN_RE = /\p{L}+(?:['’]\p{L}+)*|\d+(?:[.,]\d+)*/gu;

function canonicalNumber(s: string): string {
  // "1,000" -> "1000"; "3.50" -> "3.5"; keep years and plain integers as they are.
  let t = s.replace(/,(?=\d{3}\b)/g, '');
  if (/^\d+\.\d+$/.test(t)) t = t.replace(/0+$/, '').replace(/\.$/, '');
  return t.replace(/,/g, '.');
}

/** Splits a text into sentences at . ! ? followed by white space, and at line breaks. */
function splitSentences(text: string): string[] {
  return text.split(/(?<=[.!?])\s+|[\r\n]+/).filter((s) => /[\p{L}\p{N}]/u.test(s));
}

/** Negations, read as one content word (NEGATION_KEY) that the source supports if it negates anything. */
const NEGATORS = new Set(['not', 'never', 'nor', 'neither', 'cannot']);
export const NEGATION_KEY = '¬not';

/** Words that multiply the number before them ("7 million", "seven million" = 7000000). */
const SCALES: Record<string, number> = { hundred: 1e2, thousand: 1e3, million: 1e6, billion: 1e9, trillion: 1e12 };

/** `n` times `scale` as canonical digits, or undefined when that is not an exact whole number. */
function scaled(n: string, scale: number): string | undefined {
  const v = Number(n) * scale;
  return Number.isSafeInteger(v) ? String(v) : undefined;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const COMPOUND_NUMBER_RE =
  /\b(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)[- ](one|two|three|four|five|six|seven|eight|nine)\b/gi;

/**
 * Numbers written another way, in the forms the passage is most likely to use: an ISO date
 * ("1935-06-17") as "17 June 1935", a compound number word ("forty-five") in digits, and an
 * amount with a scale letter after a currency sign ("$5M", "€2.5bn", "$300K") in full.
 */
function spellNumbers(text: string): string {
  return text
    .replace(/\b(\d{4})-(\d{2})-(\d{2})\b/g, (all, y: string, mo: string, d: string) => {
      const month = MONTHS[Number(mo) - 1];
      return month && Number(d) >= 1 && Number(d) <= 31 ? `${Number(d)} ${month} ${y}` : all;
    })
    .replace(COMPOUND_NUMBER_RE, (_, t: string, u: string) =>
      String(Number(NUMBER_WORDS[t.toLowerCase()]) + Number(NUMBER_WORDS[u.toLowerCase()])),
    )
    .replace(/([$€£])\s?(\d+(?:\.\d+)?)\s?(k|m|mn|bn|b)\b/gi, (all, cur: string, n: string, sc: string) => {
      const mult = { k: 1e3, m: 1e6, mn: 1e6, b: 1e9, bn: 1e9 }[sc.toLowerCase()] ?? 1;
      const v = Number(n) * mult;
      return Number.isSafeInteger(v) ? `${cur}${v}` : all;
    });
}

/** Metric units (as UNITS keys) in their base unit: a quantity compares across them ("1.2 km" = "1,200 m"). */
const UNIT_BASE: Record<string, [string, number]> = {
  km: ['metre', 1000],
  metre: ['metre', 1],
  cm: ['metre', 0.01],
  mm: ['metre', 0.001],
  kg: ['g', 1000],
};

/** Ordinal endings written after a number ("17th", "1st"): part of the number, not words. */
const ORDINAL_ENDINGS = new Set(['st', 'nd', 'rd', 'th']);

/**
 * Whether the last character before `at` that is not white space is a list or label mark
 * (`:`, `;`, `•`, `*`). Scans back over the white space only: linear over a sentence's tokens
 * (a test of the whole prefix per token made a long sentence quadratic).
 */
function afterListMark(text: string, at: number): boolean {
  let i = at - 1;
  while (i >= 0 && /\s/.test(text[i]!)) i--;
  return i >= 0 && ':;•*'.includes(text[i]!);
}

function tokenizeSentence(sentenceText: string, sentence: number): Tok[] {
  const out: Tok[] = [];
  const text = spellNumbers(sentenceText);
  TOKEN_RE.lastIndex = 0;
  for (let m = TOKEN_RE.exec(text); m !== null; m = TOKEN_RE.exec(text)) {
    const raw = m[0];
    if (/^\d/.test(raw)) {
      // A decade ("1880s", "the 80s") is one token: supported() matches it against the years in it.
      const decade = /^\d*0$/.test(raw) && text[m.index + raw.length] === 's' && !/\p{L}/u.test(text[m.index + raw.length + 1] ?? '');
      if (decade) TOKEN_RE.lastIndex++;
      out.push({ raw: decade ? `${raw}s` : raw, key: decade ? `${raw}s` : canonicalNumber(raw), kind: 'number', stop: false, sentence });
      continue;
    }
    const lower = raw.toLowerCase();
    if (ORDINAL_ENDINGS.has(lower) && /\d/.test(text[m.index - 1] ?? '')) continue;
    if (NEGATORS.has(lower) || /n['’]t$/.test(lower)) {
      // A negation is a claim of its own ("it was not completed in 1889"): one key for all of them.
      out.push({ raw, key: NEGATION_KEY, kind: 'word', stop: false, sentence });
      continue;
    }
    const prev = out[out.length - 1];
    // A plain number just before this word, in this sentence: a scale or a unit may follow it.
    const afterNumber = prev?.kind === 'number' && prev.sentence === sentence && /^\d+(\.\d+)?$/.test(prev.key);
    const scale = SCALES[lower];
    if (scale !== undefined && afterNumber) {
      const v = scaled(prev.key, scale);
      if (v !== undefined) {
        out[out.length - 1] = { ...prev, raw: `${prev.raw} ${raw}`, key: v };
        continue;
      }
    }
    const key = stem(raw);
    const base = UNIT_BASE[key];
    if (base !== undefined && afterNumber) {
      // The quantity is the claim: the unit goes into the number's alt key, not in a word of its own.
      prev.alt = `${Number((Number(prev.key) * base[1]).toPrecision(12))}${base[0]}`;
      out.push({ raw, key, kind: 'word', stop: true, sentence });
      continue;
    }
    const isStop = STOP_WORDS.has(lower) || STOP_WORDS.has(lower.replace(/['’].*$/, ''));
    const num = NUMBER_WORDS[lower];
    if (num !== undefined && !isStop) {
      out.push({ raw, key: num, kind: 'number', stop: false, sentence });
    } else {
      // Capitalised and not the first word of its sentence (or of a list item): part of a name.
      const first = out.length === 0 || afterListMark(text, m.index);
      const capital = /^\p{Lu}/u.test(raw) && !first && raw !== 'I';
      out.push({ raw, key, kind: capital ? 'name' : 'word', stop: isStop, sentence });
    }
  }
  return out;
}

export interface Sentence {
  text: string;
  toks: Tok[];
}

export function sentencesOf(text: string): Sentence[] {
  return splitSentences(text).map((t, i) => ({ text: t, toks: tokenizeSentence(t, i) }));
}

/** Tokenises a whole text (sentence by sentence). */
export function tokenize(text: string): Tok[] {
  return sentencesOf(text).flatMap((s) => s.toks);
}

export function contentTokens(toks: Tok[]): Tok[] {
  return toks.filter((t) => !t.stop && (t.kind === 'number' || t.key.length > 1));
}

export interface Vocabulary {
  keys: Set<string>;
  prefixes: Set<string>;
}

const PREFIX_LEN = 6;

export function vocabulary(toks: Tok[]): Vocabulary {
  const keys = new Set<string>();
  const prefixes = new Set<string>();
  for (const t of toks) {
    if (t.stop) continue;
    keys.add(t.key);
    if (t.alt !== undefined) keys.add(t.alt);
    if (t.kind !== 'number' && t.key.length >= PREFIX_LEN) prefixes.add(t.key.slice(0, PREFIX_LEN));
  }
  return { keys, prefixes };
}

export function supported(t: Tok, v: Vocabulary): boolean {
  // A quantity with a unit is supported by the same quantity in any unit ("1,200 metres" for
  // "1.2 km"), never by the bare number ("10 km" does not support "10 cm").
  if (t.alt !== undefined) return v.keys.has(t.alt);
  if (v.keys.has(t.key)) return true;
  if (t.kind === 'number') {
    const n = t.key;
    // A decade is supported by any year in it ("1880s" by 1889); integer/decimal equivalents.
    if (n.endsWith('s')) {
      const base = Number(n.slice(0, -1));
      for (let y = base; y < base + 10; y++) if (v.keys.has(String(y))) return true;
      return false;
    }
    if (/^\d+\.0+$/.test(n) && v.keys.has(n.replace(/\.0+$/, ''))) return true;
    return false;
  }
  return t.key.length >= PREFIX_LEN && v.prefixes.has(t.key.slice(0, PREFIX_LEN));
}

export function weightOf(t: Tok): number {
  return t.kind === 'number' ? 2 : t.kind === 'name' ? 1.5 : 1;
}

/**
 * A sentence that declines to answer, says the answer is not known or not given, hedges or
 * vouches for the answer ("I don't know.", "I'm sorry, but I can't help with that.", "The context
 * does not say.", "Note: I may be wrong, please verify with an official source.", "This is fully
 * supported by the passage."): talk about the answer, not about the world.
 */
const DECLINE_RE =
  /\b(?:i\s+(?:do(?:n['’]t| not)|can(?:no|['’])t|can not|could(?:n['’]t| not)|am (?:not|unable)|['’]m (?:not|unable)|was (?:not|unable)|have no|apologi[sz]e)\b|i['’]m sorry|i am sorry|(?:context|passage|text|document|article|sources?|information|data)\s+(?:provided\s+|given\s+|above\s+)?(?:does(?:n['’]t| not)|do(?:n['’]t| not)|did(?:n['’]t| not)|is(?:n['’]t| not)|has(?:n['’]t| not)|says? nothing)|(?:not|never)\s+(?:mentioned|specified|stated|given|provided|available|known|clear)\b|there\s+is\s+(?:no|not enough)\s+(?:information|data|mention)|(?:it\s+is|it['’]s)\s+(?:unclear|unknown|not clear|not possible)|cannot be (?:determined|answered|known)|\bunknown\b|(?:please|you (?:may|might|should)(?: want to)?)\s+(?:verify|double-check|check|consult|confirm)|i may be (?:wrong|mistaken)|i am (?:confident|certain)|i['’]m (?:confident|certain)|(?:this|that|it|my answer|the answer|the above)\s+(?:is|are)\s+(?:fully |entirely |completely |well )?(?:correct|accurate|supported|grounded|verified|consistent|backed))/i;

/**
 * Words such a sentence may hold besides what the source supports: it talks about the answer,
 * the asker and the source, not about the world.
 */
const DECLINE_WORDS = new Set(
  (
    'know known sure unsure certain uncertain sorry apologize apologise apologies able unable answer answers help assist ' +
    'determine determined find found say says said tell verify confirm provide access enough data detail details ' +
    'mention mentions specify specified specific state clear unclear unknown available wrong mistaken check checked ' +
    'double consult official expert experts professional note recommend question real time current knowledge cutoff ' +
    'browse internet reliable trusted possible impossible text document article information contain contains include ' +
    'includes explicitly directly exact exactly precise precisely unfortunately afraid want might think believe recall ' +
    'latest updates update website websites search reference references record records doctor lawyer advisor ' +
    'confident correct accurate supported grounded verified consistent backed fully entirely completely'
  ).split(/\s+/),
);

/**
 * A sentence's content words that claim something: in a sentence that declines, does not know or
 * hedges (DECLINE_RE), its words about the answer, the asker and the source (DECLINE_WORDS) are
 * not claims ("Delhi. Note: I may be wrong, please verify" claims Delhi).
 */
export function claimTokens(s: Sentence): Tok[] {
  const content = contentTokens(s.toks);
  return DECLINE_RE.test(s.text) ? content.filter((t) => !DECLINE_WORDS.has(t.raw.toLowerCase()) && !DECLINE_WORDS.has(t.key)) : content;
}

/**
 * Whether a sentence declines, does not know or hedges (DECLINE_RE) and says nothing else: each
 * of its claim words is a negation or the question's (`asked`). A sentence that also names
 * something else ("Delhi, I may be wrong", "I'm not sure, but it was founded in 1850") answers.
 */
export function declines(s: Sentence, asked: Vocabulary): boolean {
  return DECLINE_RE.test(s.text) && claimTokens(s).every((t) => t.key === NEGATION_KEY || supported(t, asked));
}
