#!/usr/bin/env python3
"""Imports the alt-profanity-check model (PyPI, MIT licence) into the offline judge.

    python3 scripts/import-profanity-model.py [--check]

Writes
- domain/judge/profanity-model.data.ts: the vectorizer's and the model's parameters, everything
  domain/judge/profanity-model.ts needs to reproduce `predict_proba` (vocabulary, idf, the five
  cross-validation folds' LinearSVC coefficients and intercepts and their sigmoid calibrations),
  plus the character tables of the Python that ran the import (which characters `\\w` matches,
  what `str.lower` maps them to), so the TypeScript tokeniser is the same as scikit-learn's;
- data/alt-profanity-check/LICENSE: the package's licence text;
- test/fixtures/profanity-model-parity.json: texts and the probabilities scikit-learn gives them,
  compared by test/unit/profanity-model-toxicity.test.ts.

How: a virtual environment under .stack/profanity-import/ (git-ignored) with the pinned
scikit-learn and joblib the package was trained with; `pip download` of the pinned package
version, checked against its SHA-256; the pickles are loaded with that scikit-learn, their
parameters checked (TF-IDF of single words, English stop words, l2 norm, sigmoid-calibrated
LinearSVC, two classes) and written out; the exported parameters are then re-applied by a plain
re-implementation in this script and compared with `predict_proba` on every fixture text.

Deterministic: the same Python (its Unicode tables are written out) and the pinned packages give
the same files; the fixture's texts are chosen with a fixed seed. --check writes nothing and
fails when a written file would change.
"""

import json
import math
import os
import random
import sys
import zipfile

import pinned_venv

PACKAGE = "alt-profanity-check"
VERSION = "1.9.1"
WHEEL = "alt_profanity_check-1.9.1-py3-none-any.whl"
WHEEL_SHA256 = "cccb8ce072306bac21188670777a25cfb1de978aa8c7a93c8e4a43c03b3945c3"
LICENSE_NAME = "MIT"
AUTHORS = "Victor Zhou, Menelaos Kotoglou, Dimitrios Mistriotis"
# The versions the package pins (scikit-learn, joblib) and those they resolved to when imported.
REQUIREMENTS = [
    "scikit-learn==1.9.1",
    "joblib==1.6.0",
    "numpy==2.4.6",
    "scipy==1.17.1",
    "threadpoolctl==3.8.0",
    "narwhals==2.29.0",
    "cloudpickle==3.1.3",
]
SEED = 20240611

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
WORK = os.path.join(ROOT, ".stack", "profanity-import")
VENV = os.path.join(WORK, "venv")
DATA_TS = os.path.join(ROOT, "domain", "judge", "profanity-model.data.ts")
LICENSE_OUT = os.path.join(ROOT, "data", "alt-profanity-check", "LICENSE")
FIXTURE = os.path.join(ROOT, "test", "fixtures", "profanity-model-parity.json")


def log(msg):
    print(f"import-profanity-model: {msg}", flush=True)


def ensure_venv():
    """Creates the virtual environment with the pinned packages; re-runs this script in it."""
    if sys.version_info < (3, 11):
        sys.exit("import-profanity-model: needs Python >= 3.11 (scikit-learn 1.9)")
    pinned_venv.ensure_venv("import-profanity-model", VENV, REQUIREMENTS)


def fetch_wheel():
    """Downloads the pinned wheel (once) and checks its SHA-256."""
    return pinned_venv.fetch_wheel("import-profanity-model", os.path.join(WORK, "download"), f"{PACKAGE}=={VERSION}", WHEEL, WHEEL_SHA256)


# ---------------------------------------------------------------------------------------------
# Character tables of this Python (what scikit-learn's tokeniser sees)
# ---------------------------------------------------------------------------------------------


def ranges_of(pred):
    out, start = [], None
    for c in range(0x110000):
        ok = pred(c)
        if ok and start is None:
            start = c
        elif not ok and start is not None:
            out.append([start, c - 1])
            start = None
    if start is not None:
        out.append([start, 0x10FFFF])
    return out


def character_tables():
    import re

    word = re.compile(r"(?u)\w")
    surrogate = lambda c: 0xD800 <= c <= 0xDFFF  # noqa: E731
    word_chars = ranges_of(lambda c: not surrogate(c) and word.match(chr(c)) is not None)
    lower = []
    for c in range(0x80, 0x110000):
        if surrogate(c) or c == 0x3A3:
            continue
        low = chr(c).lower()
        if low != chr(c):
            lower.append([c, [ord(x) for x in low]])

    # str.lower maps capital sigma by context (Final_Sigma): final form after a cased letter
    # (case-ignorable characters skipped) unless a cased letter follows. Both properties are read
    # off str.lower itself, so the tables are this Python's.
    def final(s, i):
        return s.lower()[i] == "\u03c2"

    def cased(c):
        return not surrogate(c) and final(chr(c) + "\u03a3", -1)

    def ignorable(c):
        if surrogate(c):
            return False
        ch = chr(c)
        if cased(c):
            return final("A\u03a3" + ch, 1)
        return final("A" + ch + "\u03a3", -1)

    return {
        "wordChars": word_chars,
        "lower": lower,
        "cased": ranges_of(cased),
        "caseIgnorable": ranges_of(ignorable),
    }


# ---------------------------------------------------------------------------------------------
# Re-implementation from the exported parameters (the algorithm of profanity-model.ts)
# ---------------------------------------------------------------------------------------------


class Reimplementation:
    def __init__(self, params, tables):
        import bisect

        self.bisect = bisect
        self.index = {t: i for i, t in enumerate(params["tokens"].split(" "))}
        self.idf = params["idf"]
        self.folds = params["folds"]
        self.lower_map = {c: "".join(chr(x) for x in m) for c, m in tables["lower"]}
        self.word = self._set(tables["wordChars"])
        self.cased = self._set(tables["cased"])
        self.ignorable = self._set(tables["caseIgnorable"])

    def _set(self, ranges):
        starts = [a for a, _ in ranges]
        ends = [b for _, b in ranges]

        def has(c):
            i = self.bisect.bisect_right(starts, c) - 1
            return i >= 0 and c <= ends[i]

        return has

    def lower(self, s):
        out = []
        cps = [ord(ch) for ch in s]
        for i, c in enumerate(cps):
            if c < 0x80:
                out.append(chr(c + 32) if 0x41 <= c <= 0x5A else chr(c))
            elif c == 0x3A3:
                j = i - 1
                while j >= 0 and self.ignorable(cps[j]):
                    j -= 1
                fin = j >= 0 and self.cased(cps[j])
                if fin:
                    j = i + 1
                    while j < len(cps) and self.ignorable(cps[j]):
                        j += 1
                    fin = j == len(cps) or not self.cased(cps[j])
                out.append("\u03c2" if fin else "\u03c3")
            else:
                out.append(self.lower_map.get(c, chr(c)))
        return "".join(out)

    def tokens(self, text):
        out, run = [], []
        for ch in self.lower(text) + " ":
            if self.word(ord(ch)):
                run.append(ch)
            else:
                if len(run) >= 2:
                    out.append("".join(run))
                run = []
        return out

    def proba(self, text):
        counts = {}
        for t in self.tokens(text):
            i = self.index.get(t)
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        norm = math.sqrt(sum((n * self.idf[i]) ** 2 for i, n in counts.items()))
        p = 0.0
        for f in self.folds:
            d = f["intercept"]
            if norm > 0:
                d += sum(n * self.idf[i] / norm * f["coef"][i] for i, n in counts.items())
            z = f["a"] * d + f["b"]
            p += 1 / (1 + math.exp(z)) if z > -700 else 1.0
        return p / len(self.folds)


# ---------------------------------------------------------------------------------------------
# Fixture texts
# ---------------------------------------------------------------------------------------------


def fixture_texts(vocabulary):
    import csv

    rng = random.Random(SEED)
    data = os.path.join(ROOT, "data")
    texts = []

    with open(os.path.join(data, "davidson-offensive", "labeled_data.csv"), newline="", encoding="utf-8") as f:
        tweets = [row["tweet"] for row in csv.DictReader(f)]
    texts += tweets[::20]  # 1,240 tweets
    with open(os.path.join(data, "halueval", "general.jsonl"), encoding="utf-8") as f:
        general = [json.loads(line) for line in f if line.strip()]
    texts += [g["user_query"] for g in general[::40]]
    responses = [g["chatgpt_response"] for g in general if 1000 <= len(g["chatgpt_response"]) <= 2200]
    texts += responses[::8]
    with open(os.path.join(data, "hatecheck", "test_suite_templates.tsv"), encoding="utf-8") as f:
        texts += [line.rstrip("\n").split("\t")[2] for line in f.readlines()[1:] if line.strip()]
    for name in ("jigsaw_toxic_sample.csv", "jigsaw_clean_sample.csv"):
        with open(os.path.join(data, "jigsaw", name), newline="", encoding="utf-8") as f:
            texts += [row["comment_text"] for row in csv.DictReader(f)]
    with open(os.path.join(data, "sanity", "toxicity-sanity.jsonl"), encoding="utf-8") as f:
        texts += [json.loads(line)["text"] for line in f if line.strip()]

    # Made-up texts for the tokeniser's edges: case, digits and underscores, accents and
    # combining marks, other scripts, the Greek final sigma, dotted capital I, the Kelvin sign,
    # invisible characters, emoji, empty and blank texts, long texts.
    words = sorted(vocabulary)
    hand = [
        "", " ", "\n\t", "a", "I", "ab", "A_B", "__", "_x_", "x1 2y 33", "fuck", "FUCK YOU", "F.U.C.K",
        "f u c k", "f4ck you", "you b1tch", "go to hell, you scum", "Shut up you stupid bitch",
        "\u0130stanbul is lovely", "STUPID\u0130DIOT", "\u212aILL \u212a\u212a", "\u00c5ngstr\u00f6m",
        "ΟΔΥΣΣΕΥΣ ΚΑΙ ΣΟΦΙΑ", "ΕΤΗΤΗΣ", "ΜΕΛ ΜΕΛΣ", "Σ", "ΑΣ", "ΑΣΑ", "Α\u0345Σ", "Α.Σ", "Α'Σ b",
        "Jos\u00e9 Beyonc\u00e9 Pok\u00e9mon", "Jose\u0301 Beyonce\u0301", "d\u03b1lus", "\u03b2command",
        "fu\u200bck", "fu\u00adck", "fu\u0301ck", "b\u0131tch", "BITCH\u00df", "stra\u00dfe", "\ufb01ne \ufb00",
        "\U0001F595 fuck \U0001F595", "\U0001d41f\U0001d42e\U0001d41c\U0001d424", "ｆｕｃｋ ｙｏｕ",
        "竜龙 聖やや 連絡 見学 迷惑", "ውይይት", "snun\u0250w", "\u1c89\ua7cb\ua7cbx", "x\ua7cb\ua7cb",
        "n\u00b2gg\u00b3r", "\u2160\u2161 idiot", "idiot\u00b9", "caf\u00e9_idiot", "3rd 2nd 1st",
    ]
    texts += hand
    specials = ["\u0130", "\u212a", "\u03a3", "\u0345", "\u00df", "\u0301", "\u200b", "_", "'", "-", "1", "\u00e9",
                "\u0131", "\ua7cb", "\u1e9e", "\u2126", "\U0001F600", "\u00a0", "\u3000", "\u0660"]
    for _ in range(800):
        n = rng.randint(1, 30)
        parts = []
        for _ in range(n):
            r = rng.random()
            if r < 0.55:
                w = rng.choice(words)
                w = {0: w, 1: w.upper(), 2: w.capitalize()}[rng.randrange(3)]
            elif r < 0.75:
                w = "".join(chr(rng.choice([rng.randint(0x20, 0x7E), rng.randint(0xA0, 0x2FFF), rng.randint(0x3000, 0xFFFD),
                                            rng.randint(0x10000, 0x1FAFF)])) for _ in range(rng.randint(1, 6)))
                w = "".join(ch for ch in w if not 0xD800 <= ord(ch) <= 0xDFFF)
            else:
                w = rng.choice(words) + rng.choice(specials) + rng.choice(words)
            parts.append(w)
        sep = rng.choice([" ", " ", ", ", "\n", "  ", "\t", "."])
        texts.append(sep.join(parts))
    for _ in range(60):
        texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(200, 400))))
    return texts


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------


def fmt(x):
    """A float with 8 significant digits (JSON number): the probabilities move by under 1e-7."""
    s = f"{x:.8g}"
    return "0" if s in ("-0", "0") else s


def exact(x):
    """A float as written by repr (JSON number, round-trips exactly)."""
    return repr(float(x))


def write_or_check(path, content, check, changed):
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
    # A JSON file is compared as JSON: the repository's formatter lays the committed file out its own way.
    same_json = path.endswith(".json") and old is not None and json.loads(old) == json.loads(content)
    if old == content or same_json:
        log(f"{os.path.relpath(path, ROOT)} unchanged")
        return
    if check:
        changed.append(os.path.relpath(path, ROOT))
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(content)
    log(f"wrote {os.path.relpath(path, ROOT)} ({len(content.encode('utf-8')) / 1024:.0f} kB)")


def main():
    check = "--check" in sys.argv[1:]
    unknown = [a for a in sys.argv[1:] if a != "--check"]
    if unknown:
        sys.exit(f"import-profanity-model: unknown argument {unknown[0]!r} (usage: [--check])")
    ensure_venv()

    import unicodedata

    import joblib
    import sklearn
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
    from sklearn.svm import LinearSVC

    wheel = fetch_wheel()
    with zipfile.ZipFile(wheel) as z:
        extract = os.path.join(WORK, "package")
        z.extractall(extract)
        licence = z.read("alt_profanity_check-1.9.1.dist-info/licenses/LICENSE").decode("utf-8")
    vectorizer = joblib.load(os.path.join(extract, "profanity_check", "data", "vectorizer.joblib"))
    model = joblib.load(os.path.join(extract, "profanity_check", "data", "model.joblib"))

    # The configuration profanity-model.ts reproduces; anything else stops the import.
    assert sklearn.__version__ == "1.9.1", sklearn.__version__
    assert type(vectorizer) is TfidfVectorizer, type(vectorizer)
    p = vectorizer.get_params()
    expected = {
        "analyzer": "word", "binary": False, "input": "content", "lowercase": True, "ngram_range": (1, 1),
        "norm": "l2", "preprocessor": None, "smooth_idf": True, "stop_words": "english", "strip_accents": None,
        "sublinear_tf": False, "token_pattern": r"(?u)\b\w\w+\b", "tokenizer": None, "use_idf": True,
    }
    for k, v in expected.items():
        assert p[k] == v, (k, p[k])
    assert type(model) is CalibratedClassifierCV and model.method == "sigmoid", (type(model), model.method)
    assert list(model.classes_) == [0, 1], model.classes_
    vocab = vectorizer.vocabulary_
    n = len(vocab)
    assert sorted(vocab.values()) == list(range(n))
    assert not set(vocab) & ENGLISH_STOP_WORDS, "a stop word is in the vocabulary"
    assert all(" " not in t for t in vocab)
    folds = []
    for cc in model.calibrated_classifiers_:
        est = cc.estimator
        assert type(est) is LinearSVC and cc.method == "sigmoid" and list(est.classes_) == [0, 1]
        assert est.coef_.shape == (1, n) and len(cc.calibrators) == 1
        cal = cc.calibrators[0]
        folds.append({
            "coef": [fmt(x) for x in est.coef_[0]],
            "intercept": exact(est.intercept_[0]),
            "a": exact(cal.a_),
            "b": exact(cal.b_),
        })

    tokens = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    tables = character_tables()
    source = {
        "package": PACKAGE,
        "version": VERSION,
        "license": LICENSE_NAME,
        "authors": AUTHORS,
        "wheelSha256": WHEEL_SHA256,
        "scikitLearn": sklearn.__version__,
        "pythonUnicode": unicodedata.unidata_version,
    }
    # JSON by hand, so the numbers are written exactly as formatted.
    body = (
        "{"
        f"\"version\":\"{PACKAGE}-{VERSION}\","
        f"\"source\":{json.dumps(source, sort_keys=True)},"
        "\"vectorizer\":{\"lowercase\":true,\"tokenPattern\":\"(?u)\\\\b\\\\w\\\\w+\\\\b\",\"ngramRange\":[1,1],"
        "\"stopWords\":\"english (none is in the vocabulary)\",\"norm\":\"l2\",\"useIdf\":true,\"smoothIdf\":true,"
        "\"sublinearTf\":false,\"binary\":false},"
        f"\"tokens\":{json.dumps(' '.join(tokens), ensure_ascii=False)},"
        f"\"idf\":[{','.join(fmt(x) for x in vectorizer.idf_)}],"
        "\"folds\":["
        + ",".join(
            "{"
            f"\"intercept\":{f['intercept']},\"a\":{f['a']},\"b\":{f['b']},"
            f"\"coef\":[{','.join(f['coef'])}]"
            "}"
            for f in folds
        )
        + "],"
        f"\"wordChars\":{json.dumps(tables['wordChars'], separators=(',', ':'))},"
        f"\"lower\":{json.dumps(tables['lower'], separators=(',', ':'))},"
        f"\"cased\":{json.dumps(tables['cased'], separators=(',', ':'))},"
        f"\"caseIgnorable\":{json.dumps(tables['caseIgnorable'], separators=(',', ':'))}"
        "}"
    )
    params = json.loads(body)

    # The exported parameters must reproduce predict_proba.
    texts = fixture_texts(tokens)
    reference = model.predict_proba(vectorizer.transform(texts))[:, 1]
    mine = Reimplementation(params, tables)
    worst = 0.0
    for t, r in zip(texts, reference):
        assert mine.lower(t) == t.lower(), repr(t)
        worst = max(worst, abs(mine.proba(t) - float(r)))
    log(f"re-implementation vs predict_proba on {len(texts)} texts: largest difference {worst:.2e}")
    assert worst < 1e-7, worst

    module = (
        "// Generated by scripts/import-profanity-model.py. Do not edit by hand.\n"
        f"// {PACKAGE} {VERSION} ({LICENSE_NAME}; {AUTHORS}; licence text in data/alt-profanity-check/LICENSE):\n"
        f"// TF-IDF over {n} words and a sigmoid-calibrated LinearSVC in {len(folds)} folds, trained by its\n"
        "// authors with scikit-learn " + sklearn.__version__ + "; character tables of Python's Unicode "
        + unicodedata.unidata_version + ".\n"
        f"export const PROFANITY_MODEL_JSON = {json.dumps(body, ensure_ascii=True)};\n"
    )
    fixture = {
        "about": (
            f"Texts and the probability of the offensive class that {PACKAGE} {VERSION} gives them "
            f"(scikit-learn {sklearn.__version__}, predict_proba). Written by scripts/import-profanity-model.py."
        ),
        "cases": [{"text": t, "p": float(r)} for t, r in zip(texts, reference)],
    }
    changed = []
    write_or_check(DATA_TS, module, check, changed)
    write_or_check(LICENSE_OUT, licence, check, changed)
    write_or_check(FIXTURE, json.dumps(fixture, ensure_ascii=False, indent=0) + "\n", check, changed)
    if changed:
        sys.exit(f"import-profanity-model: would change {', '.join(changed)}")


if __name__ == "__main__":
    main()
