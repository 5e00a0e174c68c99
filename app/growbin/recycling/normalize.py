"""Search keys: the form in which names, aliases and queries are compared.

A key is lower-case ASCII without spaces or punctuation, with every Hangul syllable spelled
out jamo by jamo in a romanisation. That gives pg_trgm something to work with in any database
locale (with LC_CTYPE=C, PostgreSQL treats Hangul as non-alphanumeric and extracts no trigrams
at all), lets one wrong vowel cost one letter instead of a whole syllable (페트병/패트병), and
makes spacing variants (택배 박스/택배박스) identical. Vowels and final consonants that Koreans
commonly confuse in spelling (ㅐ/ㅔ, ㅙ/ㅚ/ㅞ, final ㅅ/ㅈ/ㅊ/ㅌ/ㅎ) share one spelling.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_INITIALS = (
    "g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s",
    "ss", "", "j", "jj", "ch", "k", "t", "p", "h",
)  # fmt: skip
_MEDIALS = (
    "a", "e", "ya", "ye", "eo", "e", "yeo", "ye", "o", "wa", "we",
    "we", "yo", "u", "wo", "we", "wi", "yu", "eu", "ui", "i",
)  # fmt: skip
_FINALS = (
    "", "k", "k", "k", "n", "n", "n", "t", "l", "l", "l", "l", "l", "l",
    "l", "l", "m", "p", "p", "t", "t", "ng", "t", "t", "k", "t", "p", "t",
)  # fmt: skip
_SYLLABLE_FIRST = 0xAC00
_SYLLABLE_LAST = 0xD7A3
_NOT_KEY = re.compile(r"[^a-z0-9]+")


def _romanize(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if _SYLLABLE_FIRST <= code <= _SYLLABLE_LAST:
            index = code - _SYLLABLE_FIRST
            out.append(_INITIALS[index // 588])
            out.append(_MEDIALS[(index % 588) // 28])
            out.append(_FINALS[index % 28])
        else:
            out.append(char)
    return "".join(out)


def search_key(text: str) -> str:
    """The comparable form of ``text``; empty when nothing searchable is left."""
    # NFKC composes decomposed Hangul (as some phone keyboards send it) and folds full-width
    # Latin letters and digits to ASCII.
    composed = unicodedata.normalize("NFKC", text).lower()
    return _NOT_KEY.sub("", _romanize(composed))


# --- Queries -------------------------------------------------------------------------------
#
# People type sentences around the item ("페트병 라벨은 어떻게 버려요?", "how to recycle a pizza
# box"); the catalogue holds names. A query is cut into words, and what only says "how do I
# throw this away" is dropped: question words, disposal verbs, the particles glued to a noun
# and English function words. Words that say what state the item is in ("다 쓴", "깨진",
# "old") or name the stream generically ("쓰레기") are dropped from the item phrase too, but
# the phrase as read keeps them, since some names carry them ("깨진 유리", "broken glass").

_NOT_WORD = re.compile(r"[^0-9a-z가-힣]+")
# Whole words that only ask how or where to dispose of something.
_FUNCTION_WORD = re.compile(
    r"^(?:어떻게|어떡해|어케|어디|어디에|어디로|어디다|어디에다|어디서|"
    r"버리\w*|버려\w*|버릴\w*|버린|버림|내다\w*|"
    r"분리|수거|배출|분리수거\w*|분리배출\w*|재활용(?:은|이|도|돼\w*|되\w*|가능\w*|하\w*|해\w*)?|"
    r"처리|처리법|처리방법|처리해\w*|처리하\w*|방법|방법은|방법이|법|곳|"
    r"돼|돼요|되요|되나|되나요|되는지|되는지요|될까|될까요|되니|되죠|됨|가능|가능해요|가능한가요|"
    r"해요|하나요|하는|하는법|해야|해야돼|해야해|할까|할까요|해|인가요|이에요|예요|에요|이야|야|"
    r"뭐|뭐야|뭐예요|뭐에요|무엇|무슨|알려줘|알려주세요|알려줘요|궁금해요|좀|요|때|할때|"
    r"이거|그거|저거|이건|그건|저건|이것|그것|저것|이런|저런|그런|거|것|속|안|못)$"
)
# The same phrases written onto the item word without a space ("깡통버리는법").
_FUNCTION_SUFFIX = re.compile(
    r"(?:어떻게|어디에?)?(?:버리는법|버리는방법|버리는곳|버리기|버려요|버려|버리나요|버릴까요|"
    r"분리수거|분리배출|재활용|배출방법|배출법|처리방법|처리법|방법)$"
)
# "X는 Y인가요?" asks whether X belongs to Y: Y is the question, X the item.
_COPULA = re.compile(r"(?:인가요|인가|인지|일까요|이에요|이예요|예요|에요|이야|이죠|인데요?|이냐)$")
# Descriptive words written onto the item ("다쓴건전지").
_STATE_PREFIX = re.compile(r"^(?:다쓴|다먹은|다마신|먹다남은|쓰다남은|안쓰는|못쓰는)(?=[가-힣]{2})")
# A verb closing the sentence after the item ("테이프 떼야 하나요", "뚜껑 빼고 버려요").
_VERB_ENDING = re.compile(r"(?:야|요|죠|냐|까|고|면|서|려면|는데)$")
# Particles after a noun: 은/을/이 follow a final consonant, 는/를/가 a vowel.
_AFTER_CONSONANT = ("은", "을", "이", "은요", "이요", "이랑", "과")
_AFTER_VOWEL = ("는", "를", "가", "는요", "랑", "와")
_AFTER_EITHER = ("도", "의", "에", "에서", "으로", "로", "만", "까지", "부터")
# These also end nouns (종이, 포도): strip them only from words of two syllables or more...
_AMBIGUOUS_PARTICLES = frozenset(("이", "가", "도", "의", "에", "로", "과", "와", "만"))
# ... and these not from the last word, where a noun ending in them is likelier (about 60
# catalogue names end in 이: 떡볶이, 뽁뽁이, 색종이; 청포도, 손난로).
_NOUN_ENDINGS = frozenset(("이", "도", "로", "과", "와", "만", "에"))
# The state an item is in, not what it is.
_STATE_WORD = re.compile(
    r"^(?:다|다쓴|쓴|쓰던|썼던|사용한|빈|깨진|깨어진|부서진|망가진|고장난|찢어진|낡은|오래된|"
    r"더러운|먹다|먹던|먹고|먹은|다먹은|다마신|마신|남긴|안쓰는|못쓰는|쓰는|입는|입던|작은|큰|새|헌|"
    r"썩은|상한|유통기한|지난|본|읽은|읽던|"
    r"남은거|깨짐|깨졌어요|깨졌을때|깨져서|\w*[가-힣](?:거|것)|"
    r"old|used|empty|broken|dirty|dead|leftover|small|big|new)$"
)
_DECIMAL_POINT = re.compile(r"(?<=[0-9])\.(?=[0-9])")
# Stream words that add nothing to the item before them ("비닐 쓰레기").
_GENERIC_WORD = re.compile(
    r"^(?:쓰레기|폐기물|종류|류|제품|용품|물건|쪼가리|뭉치|덩어리|묶음|더미|trash|waste|garbage|stuff)$"
)
# English words that only frame the question ("how do I recycle ...").
ENGLISH_STOPWORDS = frozenset(
    (
        "a", "an", "the", "my", "our", "your", "his", "her", "their", "this", "that", "these",
        "those", "some", "any", "i", "we", "you", "it", "is", "are", "was", "be", "do", "does",
        "did", "could", "should", "would", "will", "how", "where", "what", "which", "who",
        "why", "when", "to", "of", "for", "in", "on", "at", "with", "and", "or", "not", "no", "yes",
        "please", "thanks", "thank", "go", "goes", "put", "throw", "throwing", "away", "out",
        "dispose", "disposing", "disposal", "get", "rid", "recycle", "recyclable", "recycled",
        "recycling", "sort", "bin", "discard", "take", "drop", "off", "leave", "about", "tell",
        "me", "know", "want", "need", "there", "here", "into", "from", "by", "as", "if", "so",
        "just", "also", "okay", "way", "ways",
    )
)  # fmt: skip
# How far back a head noun may reach, in syllables (Hangul) or words (Latin).
MAX_HEAD_UNITS = 8


def _hangul_final(syllable: str) -> int:
    """Index of the final consonant of a Hangul syllable (0: none), -1 for anything else."""
    code = ord(syllable)
    if _SYLLABLE_FIRST <= code <= _SYLLABLE_LAST:
        return (code - _SYLLABLE_FIRST) % 28
    return -1


def _strip_particle(word: str, *, last: bool) -> str:
    for particle in sorted((*_AFTER_CONSONANT, *_AFTER_VOWEL, *_AFTER_EITHER), key=len)[::-1]:
        stem = word[: -len(particle)]
        if not word.endswith(particle) or not stem:
            continue
        final = _hangul_final(stem[-1])
        if final < 0:
            continue
        if particle in _AFTER_CONSONANT and final == 0:
            continue
        if particle in _AFTER_VOWEL and final != 0:
            continue
        if particle in _AMBIGUOUS_PARTICLES and len(stem) < 2:
            continue
        if last and particle in _NOUN_ENDINGS:
            continue
        return stem
    return word


def _singular(word: str) -> str:
    if re.fullmatch(r"[a-z]{4,}", word) and word.endswith("s") and not word.endswith("ss"):
        if word.endswith("ies"):
            return word[:-3] + "y"
        return word[:-2] if word.endswith(("ches", "shes", "xes")) else word[:-1]
    return word


def _strip_function_suffix(word: str) -> str:
    while (match := _FUNCTION_SUFFIX.search(word)) and match.start() > 0:
        word = word[: match.start()]
    return word


@dataclass(frozen=True)
class Split:
    """A query read as modifier + head noun."""

    # The head as written (``compact``) and as a search key; the modifier as a search key.
    head_text: str
    head: str
    modifier: str
    # The boundary falls inside a written word ("음료수캔"), not between words.
    inside_word: bool


@dataclass(frozen=True)
class Query:
    """A search query reduced to the item it asks about."""

    # The item phrase, readable: "페트병 라벨" for "페트병 라벨은 어떻게 버려요?".
    text: str
    # Search keys of the phrase: the item phrase first, then the forms as read (with state
    # words, particles) where they differ. Every key is matched; the best match counts.
    phrases: tuple[str, ...]
    # Every way to read the item phrase as modifier + head (head-final compounds).
    splits: tuple[Split, ...]

    @property
    def key(self) -> str:
        """One string that determines the search (the cache key)."""
        return "+".join(self.phrases)


def _units(words: list[str]) -> list[tuple[str, bool]]:
    """Syllables of Hangul runs and whole Latin/digit runs, each with "starts a word"."""
    units: list[tuple[str, bool]] = []
    for word in words:
        for run_index, run in enumerate(re.findall(r"[가-힣]+|[0-9a-z]+", word)):
            if "가" <= run[0] <= "힣":
                units.extend(
                    (syllable, run_index == 0 and i == 0) for i, syllable in enumerate(run)
                )
            else:
                units.append((run, run_index == 0))
    return units


def _splits(words: list[str]) -> tuple[Split, ...]:
    units = _units(words)
    splits = []
    for size in range(1, min(len(units), MAX_HEAD_UNITS + 1)):
        head_units, modifier_units = units[-size:], units[:-size]
        inside_word = not head_units[0][1]
        # Someone who spaces words writes a compound's nouns apart: split inside a word only
        # for a query written as one ("음료수캔"), and never off a number ("아이시스 8.0").
        if inside_word and len(words) > 1 or not re.search("[가-힣a-z]", head_units[0][0]):
            continue
        # A one-syllable modifier glued to its head is more likely one word (쇼파, 소주).
        if inside_word and sum(len(u) for u, _ in modifier_units) < 2:
            continue
        head_text = "".join(u for u, _ in head_units)
        modifier = search_key("".join(u for u, _ in modifier_units))
        if modifier:
            splits.append(
                Split(
                    head_text=head_text,
                    head=search_key(head_text),
                    modifier=modifier,
                    inside_word=inside_word,
                )
            )
    return tuple(splits)


def compact(text: str) -> str:
    """``text`` without spaces or punctuation, lower-case: how a head noun is compared with the
    end of a name (syllable by syllable, which romanised keys cannot do: 두유 ends in the
    letters of 우유)."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).lower())


def parse_query(text: str) -> Query:
    """The item phrase of ``text`` and its search keys; ``phrases`` is empty when nothing
    searchable is left."""
    composed = unicodedata.normalize("NFKC", text).lower()
    # "8.0" stays one word; other punctuation separates words.
    words = _NOT_WORD.sub(" ", _DECIMAL_POINT.sub("", composed)).split()
    predicate = None
    if words and (copula := _COPULA.search(words[-1])) and copula.start() > 0:
        predicate = words.pop()[: copula.start()]
        if not words:
            words, predicate = [predicate], None
    content = [
        w
        for position, w in enumerate(_strip_function_suffix(w) for w in words)
        if w
        and not _FUNCTION_WORD.match(w)
        and w not in ENGLISH_STOPWORDS
        and not (position > 0 and _VERB_ENDING.search(w) and _hangul_final(w[-1]) >= 0)
    ]
    as_read = [_strip_particle(w, last=i == len(content) - 1) for i, w in enumerate(content)]
    item = [
        _STATE_PREFIX.sub("", stripped)
        for word, stripped in zip(content, as_read, strict=True)
        if not (_STATE_WORD.match(word) or _STATE_WORD.match(stripped))
    ]
    while len(item) > 1 and _GENERIC_WORD.match(item[-1]):
        item.pop()
    if not item and predicate:
        item = [predicate]
    if not item:
        # Only function words ("재활용", "how to recycle"): they are the query then.
        item = as_read or words
    phrases = tuple(
        dict.fromkeys(
            key
            for key in (
                search_key("".join(item)),
                search_key("".join(as_read)),
                search_key("".join(content)),
                # English plurals ("paper cups"): the catalogue names things in the singular.
                search_key("".join(_singular(w) for w in item)),
            )
            if key
        )
    )
    return Query(text=" ".join(item), phrases=phrases, splits=_splits([_singular(w) for w in item]))
