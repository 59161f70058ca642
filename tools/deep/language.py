"""Which language a sample of texts is in: a small heuristic with no dependency and no download.

The writing system settles most non-Latin languages at once; Latin-script text is told apart
by its most frequent short words. That is enough to pick a translation checkpoint or a
multilingual backbone, which is all the planner asks of it; texts it cannot place are 'und'.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

# Unicode script (the first word of a character's name) -> language, where one script means one
# language in practice. Han alone is Chinese; Han mixed with kana is Japanese.
SCRIPTS = {
    "CYRILLIC": "ru",
    "ARABIC": "ar",
    "GREEK": "el",
    "HEBREW": "he",
    "DEVANAGARI": "hi",
    "THAI": "th",
    "HANGUL": "ko",
    "HIRAGANA": "ja",
    "KATAKANA": "ja",
    "CJK": "zh",
}
STOPWORDS = {
    "en": "the and of to in is that it for was with as on are be this you not have",
    "de": "der die und das ist nicht ein eine zu den mit sich des auf für im dem von",
    "fr": "le la les et des est une pas que en du dans pour qui sur au avec ce il",
    "es": "el la los las y que de en un una es por con para no se del al lo",
    "it": "il la che di e è un una per non in del della con sono gli le si",
    "pt": "o a os as e que de em um uma não para com do da por se é no",
    "nl": "de het een en van is dat niet op te zijn met voor die er ook",
    "sv": "och att det som en är på för med har inte av den till var jag",
    "pl": "i w nie się na jest to że z do jak po co ale tak od",
    "ro": "și de la în cu nu este pe din un o care se mai pentru",
    "tr": "ve bir bu da de için ile çok ne olarak gibi daha ama değil",
}
WORDS = {lang: set(text.split()) for lang, text in STOPWORDS.items()}
WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
SAMPLE_CHARS = 20_000


def detect_language(texts: Iterable[str]) -> str:
    """An ISO 639-1 code for the sample, or 'und' when it cannot be told."""
    sample = _sample(texts)
    scripts = _scripts(sample)
    letters = sum(scripts.values())
    if not letters:
        return "und"
    script, count = scripts.most_common(1)[0]
    if script != "LATIN" and count >= 0.3 * letters:
        if script == "CJK" and (scripts["HIRAGANA"] + scripts["KATAKANA"]) >= 0.05 * letters:
            return "ja"
        return SCRIPTS.get(script, "und")
    return _latin_language(sample)


def _sample(texts: Iterable[str]) -> str:
    parts, size = [], 0
    for text in texts:
        if isinstance(text, str) and text:
            parts.append(text)
            size += len(text)
            if size >= SAMPLE_CHARS:
                break
    return " ".join(parts)[:SAMPLE_CHARS]


def _scripts(sample: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for char in sample:
        if char.isalpha():
            name = unicodedata.name(char, "")
            counts[name.split(" ", 1)[0] if name else "UNKNOWN"] += 1
    return counts


def _latin_language(sample: str) -> str:
    words = [w.lower() for w in WORD.findall(sample)]
    if len(words) < 3:
        return "und"
    counts = Counter(words)
    hits = {lang: sum(counts[w] for w in stop) for lang, stop in WORDS.items()}
    best, score = max(hits.items(), key=lambda item: item[1])
    runner_up = max(v for lang, v in hits.items() if lang != best)
    if score < max(2, 0.05 * len(words)) or score < 1.3 * runner_up:
        return "und"
    return best
