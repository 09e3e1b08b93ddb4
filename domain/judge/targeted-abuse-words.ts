/**
 * Word lists of the targeted-abuse rules (targeted-abuse.ts): who can be targeted (the person
 * addressed, others, groups), the words that link a target to an insult (copulas), negators,
 * speaker cues of a threat, hatred and anger words, words of state or misfortune that are no
 * insult, and threat phrases with their weights. Data only.
 */

export const TARGET_YOU = new Set(['you', 'u', 'ya', 'yall', 'youre', 'ur', 'thou', 'yourself', 'yourselves']);
/** Groups of people named as such (identity, politics, generic). */
export const GROUPS = new Set([
  'people',
  'ppl',
  'guys',
  'women',
  'men',
  'girls',
  'boys',
  'muslims',
  'jews',
  'blacks',
  'whites',
  'gays',
  'lesbians',
  'immigrants',
  'migrants',
  'refugees',
  'foreigners',
  'mexicans',
  'arabs',
  'asians',
  'africans',
  'christians',
  'atheists',
  'liberals',
  'conservatives',
  'democrats',
  'republicans',
  'leftists',
  'feminists',
  'females',
  'males',
  'trans',
  'transgenders',
  'homosexuals',
  'queers',
  'disabled',
  'poor',
  'elderly',
  'politicians',
  'cops',
  'police',
  'teachers',
  'fans',
  'voters',
  'supporters',
  'idiots',
]);
/** Wishes said before the person they are about ("I hope you get shot", "wish that they die"). */
export const WISH_CUES = new Set(['hope', 'hoping', 'wish', 'wishing', 'pray', 'praying']);

/** Words that may stand between a verb and the group it is aimed at ("all the", "those"). */
export const GROUP_DETERMINERS = new Set(['the', 'all', 'those', 'these', 'every', 'each', 'them', 'some', 'more']);

export const TARGET_OTHER = new Set([
  'he',
  'she',
  'hes',
  'shes',
  'they',
  'theyre',
  'him',
  'her',
  'them',
  'guy',
  'dude',
  'bro',
  'man',
  'woman',
  'person',
  ...GROUPS,
]);
export const COPULA = new Set([
  'are',
  'r',
  're',
  'is',
  's',
  'am',
  'm',
  'be',
  'being',
  'been',
  'was',
  'were',
  'look',
  'looks',
  'sound',
  'sounds',
  'seem',
  'seems',
  'act',
  'acting',
  'become',
  'remain',
  'stay',
]);
/** Words that may stand between a copula and what it says of the target ("you are such a total ..."). */
export const PREDICATE_FILLERS = new Set([
  ...['a', 'an', 'so', 'such', 'very', 'really', 'truly', 'too', 'just', 'pretty', 'quite', 'being', 'most', 'big', 'little'],
  ...['total', 'totally', 'complete', 'completely', 'absolute', 'absolutely', 'utter', 'utterly'],
  ...['fucking', 'fuckin', 'damn', 'bloody'],
]);
export const FUSED_TARGET_COPULA = new Set(['youre', 'ur', 'hes', 'shes', 'theyre', 'yall']);
export const NEGATORS = new Set([
  'not',
  'never',
  'no',
  't',
  'nt',
  'isnt',
  'arent',
  'dont',
  'doesnt',
  'wasnt',
  'werent',
  'cant',
  'nobody',
  'neither',
  'nor',
  'without',
]);
export const SPEAKER_CUES = new Set([
  'i',
  'ill',
  'im',
  'we',
  'well',
  'gonna',
  'going',
  'will',
  'll',
  'shall',
  'should',
  'must',
  'ought',
  'deserve',
  'deserves',
  'hope',
  'wish',
  'want',
  'wanna',
  'lets',
  'let',
  'somebody',
  'someone',
  'gotta',
  'gon',
  'need',
  'needs',
  'better',
  'would',
  'd',
]);
export const HATE_VERBS = new Set(['hate', 'despise', 'detest', 'loathe', 'abhor']);
export const HATE_NOUNS = new Set(['hatred', 'contempt', 'disdain', 'scorn', 'loathing']);
export const ANGER_WORDS = new Set(['sick', 'furious', 'angry', 'mad', 'puke', 'vomit', 'disgusted']);
export const OBJECT_PRONOUNS = new Set(['you', 'u', 'ya', 'him', 'her', 'them', 'yourself']);
/** Possessives: a harm verb's object after one is a person only when the noun is in VICTIM_NOUNS. */
export const POSSESSIVES = new Set(['your', 'ur', 'yo', 'his', 'their']);
/**
 * What a threat names after a possessive: the person's body, kin, pets, home and life ("I will break
 * your legs", "kill your family"), as against things ("this will break your build", "kill your process").
 */
export const VICTIM_NOUNS = new Set([
  ...['face', 'head', 'neck', 'throat', 'skull', 'teeth', 'eyes', 'nose', 'jaw', 'spine', 'ribs', 'bones', 'body', 'heart'],
  ...['leg', 'legs', 'arm', 'arms', 'hands', 'fingers', 'knees', 'kneecaps', 'ass', 'brains', 'guts', 'balls', 'mouth'],
  ...['family', 'kids', 'children', 'child', 'son', 'daughter', 'wife', 'husband', 'mom', 'mum', 'mother', 'dad', 'father'],
  ...['brother', 'sister', 'baby', 'parents', 'friends', 'girlfriend', 'boyfriend', 'dog', 'cat', 'pets', 'house', 'home', 'car'],
  'life',
]);
/** Someone's kin or face, said of as a person ("your husband is a despicable person", "your face is ugly"). */
export const KIN_NOUNS = new Set([
  ...['family', 'kids', 'children', 'child', 'son', 'daughter', 'wife', 'husband', 'mom', 'mum', 'mother', 'dad', 'father'],
  ...['brother', 'sister', 'baby', 'parents', 'friends', 'girlfriend', 'boyfriend', 'face'],
]);
/** Possessives before KIN_NOUNS ("her" is one only there: "her husband"). */
export const KIN_OWNERS = new Set([...POSSESSIVES, 'her']);
/** Harm verbs whose subject is the victim ("you deserve to die", "they should hang"). */
export const SUFFER_VERBS = new Set(['die', 'dies', 'suffer', 'burn', 'hang', 'drown', 'rot']);
/**
 * Harm that is only a harm said of a victim in the passive ("I hope you get hit by a bus"): "hit"
 * as an order or announcement is mostly not one ("hit the button", "I'll hit you up").
 */
export const PASSIVE_HARMS: Readonly<Record<string, number>> = { hit: 0.8, run: 0.8 };
/** Auxiliaries of the passive ("they should all be shot", "he should get stabbed"). */
export const PASSIVE_AUX = new Set(['be', 'get', 'gets', 'been', 'being', 'got']);
export const REFLEXIVES = new Set(['yourself', 'yourselves', 'urself', 'himself', 'herself', 'themselves', 'themself']);

/** Negative words that describe a state or misfortune rather than insult ("you are sick", "he is dead"). */
export const STATE_WORDS = new Set([
  'sad',
  'sick',
  'ill',
  'tired',
  'sorry',
  'hurt',
  'injured',
  'wounded',
  'dead',
  'died',
  'killed',
  'lost',
  'alone',
  'lonely',
  'afraid',
  'scared',
  'upset',
  'worried',
  'guilty',
  'confused',
  'stressed',
  'depressed',
  'anxious',
  'broke',
  'wrong',
  'mistaken',
  'disappointed',
  'bored',
  'angry',
  'mad',
  'jealous',
  'embarrassed',
  'ashamed',
  'unhappy',
  'miserable',
  'pain',
  'painful',
  'dying',
  'death',
  'fear',
  'terrified',
  'frustrated',
  'hungry',
  'homeless',
  'unemployed',
  'victim',
  'victims',
  'blind',
  'deaf',
  'crying',
  'grief',
  'tragic',
  'cancer',
  'risk',
  'danger',
  'dangerous',
  'damage',
  'problem',
  'problems',
  'crisis',
  'war',
  'poverty',
  'illness',
  'disease',
  'trouble',
  'difficult',
  'hard',
  'worse',
  'worst',
  'bad',
  'stress',
  'alarm',
  'warning',
  'penalty',
  'debt',
  'fail',
  'failed',
  'fails',
  'lose',
  'losing',
  'lonely',
  'heartbroken',
]);
export const THREAT_PHRASES: readonly [string, number][] = [
  ['kill yourself', 1],
  ['kys', 1],
  ['go die', 0.95],
  ['hope you die', 1],
  ['you re dead', 0.9],
  ['youre dead', 0.9],
  ['you are dead', 0.9],
  ['watch your back', 0.85],
  ['know where you live', 0.9],
  ['coming for you', 0.8],
  ['find you and', 0.85],
  // "break your" + the body ('break your build' is no threat; VICTIM_NOUNS lets the rules read the rest).
  ...['legs', 'neck', 'face', 'jaw', 'nose', 'arms', 'bones', 'skull', 'kneecaps'].map((p): [string, number] => [`break your ${p}`, 0.85]),
  ['bullet in', 0.9],
  ['put you in the ground', 0.95],
  ['end your life', 0.95],
  ['end his life', 0.95],
  ['make you suffer', 0.95],
  ['snap your neck', 0.95],
  ['slit your throat', 1],
  ['beat the crap out', 0.9],
  ['beat the shit out', 0.9],
  ['kick your ass', 0.85],
  ['cut your throat', 1],
  ['drink bleach', 0.9],
  // A veiled threat against someone or what is theirs ("…to your kids", not "…to the data").
  ...['something', 'anything'].flatMap((what) =>
    ['you', 'your', 'ur'].map((whose): [string, number] => [`shame if ${what} happened to ${whose}`, 0.85]),
  ),
  ['your days are numbered', 0.85],
  // Wishing someone had never lived.
  ['should have aborted you', 0.85],
  ['should ve aborted you', 0.85],
  ['should have been aborted', 0.85],
  // Telling someone the world is better without them.
  ...['nobody', 'no one'].flatMap((who) => ['would', 'will'].map((v): [string, number] => [`${who} ${v} miss you`, 0.85])),
  ['better off without you', 0.8],
  ['better place without you', 0.85],
  // Putting people with animals ("you belong in a zoo"; not "the animals belong in a cage"), or
  // out of the country.
  ...['you', 'u', 'they', 'people', 'he', 'she'].flatMap((who) =>
    ['belong', 'belongs'].flatMap((v) => ['a cage', 'a zoo', 'the zoo'].map((place): [string, number] => [`${who} ${v} in ${place}`, 0.8])),
  ),
  ['go back where you came from', 0.8],
  ['go back to where you came from', 0.8],
  ['go back to your own country', 0.8],
  // Exposing someone or coercing them sexually.
  ['post your address', 0.85],
  ['posting your address', 0.85],
  ['leak your address', 0.85],
  ['dox you', 0.85],
  ['doxx you', 0.85],
  ['swat you', 0.85],
  ['send me nudes', 0.8],
  // Orders to harm oneself: the reflexive leaves no other reading.
  ...['hang', 'neck', 'rope', 'unalive'].flatMap((v) =>
    ['yourself', 'urself', 'yourselves'].map((r): [string, number] => [`${v} ${r}`, 0.95]),
  ),
];

/**
 * Veiled threats read only where they end the sentence: "I will find you.", not "I will find you
 * a table". ("You'll regret this" is left out: as often a warning, "skip backups and you'll
 * regret this", as a threat.)
 */
export const CLOSING_THREATS: readonly [string, number][] = [
  ['you won t see it coming', 0.8],
  ['you wont see it coming', 0.8],
  ['sleep with one eye open', 0.85],
  ['i will find you', 0.8],
  ['i ll find you', 0.8],
];

/**
 * Wished-for death, or exile, said as a bare order: read at the start of a sentence or after
 * "go", "just" or "please" ("die in a fire", "go jump off a bridge", "go back to your country"),
 * not inside a statement ("three people die in a fire", "you may need to go back to your country
 * to apply").
 */
export const IMPERATIVE_THREATS: readonly [string, number][] = [
  ['die in a fire', 0.9],
  ['jump off a bridge', 0.85],
  ['jump off a cliff', 0.85],
  ['play in traffic', 0.85],
  ['drop dead', 0.85],
  ['go back to your country', 0.8],
];
/** Words after a threat phrase that make it a comparison ("no one will miss you more than I will"). */
export const COMPARISON_NEXT = new Set(['more', 'as', 'so', 'like', 'too']);
/** Words an imperative threat phrase may intensify instead ("drop dead gorgeous", "drop-dead funny"). */
export const INTENSIFIED = new Set([
  'gorgeous',
  'beautiful',
  'sexy',
  'handsome',
  'stunning',
  'funny',
  'hilarious',
  'simple',
  'easy',
  'serious',
]);
export const IMPERATIVE_LEADS = ['go', 'just', 'please', 'pls', 'plz'];

export const THREAT_STARTS = new Set(
  [...THREAT_PHRASES, ...IMPERATIVE_THREATS, ...CLOSING_THREATS].map(([p]) => p.split(' ')[0] as string),
);
