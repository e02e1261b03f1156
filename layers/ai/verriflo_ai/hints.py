"""Hints instead of answers (the tutor's `hints` mode): a ladder of four levels built from the passage
of the material that answers a question, each revealing more of it, none but the last stating it.

1. Where to look and what to ask oneself: the passage's source (document, section, page) and a
   guiding question made of the student's own words that the passage uses. Nothing of the passage.
2. The idea to use: the passage with every word the question does not already contain blanked
   (`___`), numbers included, so its shape and method show but no fact or value of the answer.
3. Nearly there: the same passage with each blanked word's first letter (`s_______`).
4. The passage itself (and so for every later ask).

The level is the caller's to count (the tutor: one more for each time the same student asked the
same question in the room in hints mode); with a model instead, the same level goes into its
instructions (`MODEL_LEVELS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from verriflo_ai.providers import Passage

LEVELS = 4

# What a model is told at each level (the same ladder as the offline hints).
MODEL_LEVELS = {
    1: "Do NOT give the final answer: name only the part of the class material to reread and ask one "
    "guiding question; state no fact, value, formula or step of the answer.",
    2: "Do NOT give the final answer: name the idea or method to use and what to look for, leaving out "
    "every value and the result.",
    3: "Do NOT give the final answer: walk through the steps up to the last one and let the student take it.",
    4: "The student has asked for this several times: now give the answer and explain how it follows.",
}

_WORD = re.compile(r"[^\W_]+(?:[.,'\u2019][^\W_]+)*")
_STOPWORDS = frozenset(
    "a an and are as at be been both but by can do does each first for from has have how if in into is "
    "it its next not of on or so than that the then there these they this to was were what when where "
    "which while who why will with".split()
)


@dataclass(frozen=True, slots=True)
class Hint:
    """One rung of the ladder: what the student is told, and what of the passage it shows."""

    level: int
    text: str
    shown: str


def level_for(earlier_asks: int) -> int:
    """The level of a hint after `earlier_asks` hints for the same question (1, 2, ... up to LEVELS)."""
    return max(1, min(LEVELS, earlier_asks + 1))


def _key(word: str) -> str:
    word = word.lower().strip("'\u2019")
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def _question_words(question: str) -> set[str]:
    return {_key(w) for w in _WORD.findall(question)}


def blank(text: str, question: str, *, initials: bool) -> str:
    """`text` with every word the question does not contain (and that is not a function word) blanked:
    `___`, or its first letter and one `_` per other letter."""
    known = _question_words(question)

    def hide(match: re.Match[str]) -> str:
        word = match.group(0)
        if _key(word) in known or word.lower() in _STOPWORDS:
            return word
        if not initials:
            return "___"
        return word[0] + "_" * (len(word) - 1) if len(word) > 1 else "_"

    return _WORD.sub(hide, text)


def _guide(passage: Passage, question: str) -> str:
    """A guiding question from the student's own words that the passage uses."""
    used = {_key(w) for w in _WORD.findall(passage.text)}
    shared: list[str] = []
    for word in _WORD.findall(question):
        if _key(word) in used and word.lower() not in _STOPWORDS and word.lower() not in shared:
            shared.append(word.lower())
    if not shared:
        return "which sentence there answers your question, and why?"
    terms = shared[:3]
    named = terms[0] if len(terms) == 1 else ", ".join(terms[:-1]) + " and " + terms[-1]
    return f"what does it say about {named}, and what follows from it?"


def reveal(text: str, question: str, level: int) -> str:
    """What a hint of `level` shows of a passage: nothing, blanks, first letters, then all of it."""
    text = " ".join(text.split())
    if level <= 1:
        return ""
    if level < LEVELS:
        return blank(text, question, initials=level == 3)
    return text


def hint(passage: Passage, question: str, level: int) -> Hint:
    """The hint of `level` (1 to LEVELS) for `question`, from the passage that answers it."""
    level = max(1, min(LEVELS, level))
    head = f"Hint {level} of {LEVELS}: "
    more = " Ask the same question again for the next hint."
    shown = reveal(passage.text, question, level)
    if level == 1:
        said = f"reread “{passage.source}”. Ask yourself: {_guide(passage, question)}"
    elif level == 2:
        said = f"the idea to use is in “{passage.source}”. Fill in the blanks: {shown}"
    elif level == 3:
        said = f"each blank now shows its first letter ({passage.source}): {shown}"
    else:
        return Hint(level, head + f"here is the passage ({passage.source}): {shown}", shown)
    return Hint(level, head + said + more, shown)
