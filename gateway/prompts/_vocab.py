"""Small word lists shared by the compiler and the linter.

Heuristics, not grammar: lists are short on purpose so a warning stays explainable
("no motion word found"), and every pattern is whole-word so "pan" never fires on
"panorama". Grow a list when a real prompt is misjudged, with a test.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "ABSTRACT_RE",
    "CAMERA_CONFLICTS",
    "CAMERA_MOVE_RE",
    "MOTION_WORDS",
    "WordSet",
]


def _words(text: str) -> list[str]:
    return text.split()


def _forms(stem: str) -> list[str]:
    """Regular inflections of a verb stem; a few nonsense forms do no harm."""
    forms = [stem, stem + "s", stem + "es", stem + "ed", stem + "d", stem + "ing"]
    if stem.endswith("e"):
        forms.append(stem[:-1] + "ing")
    if stem.endswith("y"):
        forms += [stem[:-1] + "ies", stem[:-1] + "ied"]
    forms += [stem + stem[-1] + "ing", stem + stem[-1] + "ed"]
    return forms


_MOTION_STEMS = _words(
    """
walk run jog sprint stride wander stroll climb jump leap hop dance spin twirl rotate tumble
dive swim float drift glide fly soar hover flutter flap swoop ride drive sail row paddle
surf skate ski slide crawl creep sneak chase follow flee escape approach enter exit arrive
leave move shift sway swing wave nod shake tremble shiver bounce bob rise lift raise lower
push pull throw toss catch kick punch strike fight wrestle grab reach lean bend kneel sit
stand crouch look gaze glance stare smile laugh cry shout scream talk speak whisper sing say
blink breathe eat drink pour stir chop strum burst explode erupt crash collapse shatter
splash ripple flow flicker flash pulse burn blaze billow swirl churn unfold bloom grow melt
drip blow gust rustle wobble vibrate accelerate brake zoom dolly orbit
descend ascend emerge appear vanish fade morph transform reveal gesture hug kiss embrace
wipe brush comb carry sweep trot gallop hike limp stumble waddle scurry dart plunge sink
spill scatter shimmer sparkle twinkle wiggle nudge knock wink frown sigh yawn stretch twist
"""
)

#: Stems that are also common nouns or adjectives ("close-up", "open field", "her hand"):
#: only their -s and -ing forms count as motion.
_MOTION_STEMS_INFLECTED = _words(
    """
open close hand point type play cook paint draw write track circle turn step fall drop roll
race rush dash march stream smoke rain snow glow hold pass wrap dress drum pan tilt crane
row charge
"""
)

_MOTION_IRREGULAR = _words(
    """
ran swam flew fell rose drove rode threw caught fought stood sat knelt spun swung shook blew
grew froze bent leapt crept struck wrote drew sang spoke said says came went goes comes
takes took gives gave broke breaks hung sprang
"""
)

_CAMERA_MOVES = [
    r"pan(?:s|ned|ning)?\s+(?:left|right|across|over|up|down|to|from|around)",
    r"(?:whip|swish)\s+pan",
    r"panning",
    r"camera\s+pans",
    r"tilt(?:s|ed|ing)?\s+(?:up|down)",
    r"tilting",
    r"dolly(?:ing)?(?:\s+(?:in|out|forward|back|zoom))?",
    r"dollies",
    r"zoom(?:s|ed|ing)?(?:\s+(?:in|out))?",
    r"crash\s+zoom",
    r"tracking\s+shot",
    r"track(?:s|ed|ing)?\s+(?:left|right|alongside|forward|backward|with|behind)",
    r"truck(?:s|ing)?\s+(?:left|right)",
    r"crane(?:s|d)?\s+(?:shot|up|down|over)",
    r"orbit(?:s|ed|ing)?",
    r"arc\s+shot",
    r"hand-?held",
    r"push(?:es|ed|ing)?\s+in",
    r"pull(?:s|ed|ing)?\s+(?:back|out|away)",
    r"fly-?(?:through|over|by)",
    r"drone\s+shot",
    r"steadicam",
    r"follow(?:s|ing)?\s+shot",
]

#: Any camera move, as a whole phrase.
_PACE = r"(?:(?:slow|slowly|quick|fast|gentle|smooth|subtle)\s+)?"
CAMERA_MOVE_RE = re.compile(
    r"\b" + _PACE + r"(?:" + "|".join(_CAMERA_MOVES) + r")\b", re.IGNORECASE
)

_motion_words = sorted(
    {f for s in _MOTION_STEMS for f in _forms(s)}
    | {f for s in _MOTION_STEMS_INFLECTED for f in _forms(s)[1:] if not f.endswith("ed")}
    | set(_MOTION_IRREGULAR)
)


class WordSet:
    """``search`` like a compiled ``\\b(?:w1|w2|...)\\b`` (case-insensitive) over
    whole words, by a set lookup per word: ``re`` tries every alternative at every
    position, 160 µs a prompt for the 1,700 motion words against 2 µs here."""

    _WORD = re.compile(r"\w+")

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(w.lower() for w in words)

    def search(self, text: str) -> re.Match[str] | None:
        """The first word of ``text`` in the set, as a match (``start()``, ``group(0)``)."""
        return next(
            (m for m in self._WORD.finditer(text) if m.group(0).lower() in self.words), None
        )


#: A motion verb (any regular form of a stem above, or an irregular form).
MOTION_WORDS = WordSet(_motion_words)

_ABSTRACT = [
    "beautiful",
    "beautifully",
    "amazing",
    "stunning",
    "epic",
    "nice",
    "awesome",
    "incredible",
    "gorgeous",
    "breathtaking",
    "wonderful",
    "magnificent",
    "fantastic",
    "spectacular",
    "perfect",
    "feeling of",
    "concept of",
    "sense of",
    "essence of",
    "idea of",
    "spirit of",
    "vibes?",
]
#: Judgments and abstractions a video model cannot draw.
ABSTRACT_RE = re.compile(r"\b(?:" + "|".join(_ABSTRACT) + r")\b", re.IGNORECASE)

_STATIC = (
    r"static(?:\s+(?:camera|shot))?|locked(?:-|\s)?off|locked\s+camera|tripod"
    r"|fixed\s+camera|still\s+camera"
)
_MOVES = "|".join(_CAMERA_MOVES)


def _group(pattern: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + pattern + r")\b", re.IGNORECASE)


#: Pairs of camera terms that cannot both hold in one shot.
CAMERA_CONFLICTS: list[tuple[re.Pattern[str], re.Pattern[str]]] = [
    (
        _group(r"(?:extreme\s+)?close[- ]?ups?|macro(?:\s+shot)?"),
        _group(r"(?:extreme\s+)?wide\s+shot|long\s+shot|establishing\s+shot|extreme\s+wide"),
    ),
    (_group(_STATIC), _group(_MOVES)),
    (_group(r"zoom(?:s|ing)?\s+in"), _group(r"zoom(?:s|ing)?\s+out")),
    (_group(r"pan(?:s|ning)?\s+left"), _group(r"pan(?:s|ning)?\s+right")),
    (_group(r"tilt(?:s|ing)?\s+up"), _group(r"tilt(?:s|ing)?\s+down")),
    (
        _group(r"dolly(?:ing)?\s+in|push(?:es|ing)?\s+in"),
        _group(r"dolly(?:ing)?\s+out|pull(?:s|ing)?\s+(?:back|out)"),
    ),
    (
        _group(r"high[- ]angle|overhead|top[- ]down|bird'?s[- ]eye"),
        _group(r"low[- ]angle|worm'?s[- ]eye"),
    ),
]
