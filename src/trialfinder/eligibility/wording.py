"""The engine's reasons in words a patient understands.

The engine explains each criterion for the people who check it ("Not enough information: no mention of
'before random assignment'", "Not excluded: 'malignancy' is negated in the note"): exact, but NLP
diagnostics to a patient reading a result page. :func:`for_patient` rewrites such an explanation in
the second person and leaves out what only the engine cares about (which phrases it looked for and
did not find). The page already says the verdict ("Meets this", "To discuss with the study team"), so
the result is only the reason: "you are 34", "your note does not say whether you are pregnant".

Pure function on text; anything it does not recognise is kept with "patient" turned into "you".
"""

from __future__ import annotations

import re

#: The label prefixes of the engine's explanations (``evaluate._explain``); other text is left as is.
_PREFIX = re.compile(r"^(Included|Not included|Excluded|Not excluded|Not enough information|Not applicable): ")

#: What "X not stated" / "X unknown" asks about, as a patient would read it.
_UNKNOWN_THINGS = {
    "pregnancy status": "whether you are pregnant",
    "contraception use": "whether you use contraception",
    "breastfeeding": "whether you are breastfeeding",
    "childbearing potential": "whether you could become pregnant",
    "menopausal status": "whether you have been through the menopause",
    "pregnancy plans": "whether you plan a pregnancy",
    "life expectancy": "anything about life expectancy",
    "participation in other studies": "whether you take part in other studies",
    "age": "your age",
    "sex": "your sex",
    "compliance": "whether you can follow the study's schedule",
    "dose stability": "whether the dose is stable",
}

_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), r) for p, r in (
    (r"^age (\S+) meets '.*'$", r"you are \1"),
    (r"^age (\S+) does not meet '.*'$", r"you are \1, outside the age range"),
    (r"^age (\S+) may not meet '.*'$", r"you are \1, at the edge of the age range"),
    (r"^'(.+)' is negated in the note$", r"you said you do not have \1"),
    (r"^only a particular kind of '(.+)' is negated in the note$", r"you ruled out only one kind of \1"),
    (r"^note mentions '(.+)' \(a kind of (.+)\)$", r"you mentioned \1, a kind of \2"),
    (r"^note mentions '(.+)'$", r"you mentioned \1"),
    (r"^family history of '(.+)'$", r"you mentioned \1 in your family"),
    (r"^'(.+)' is only suspected$", r"\1 is only suspected"),
    (r"^'(.+)' in history, date unknown$", r"you had \1; when is not said"),
    (r"^(.+) at a stable dose for (\d+) days$", r"you take \1 at a stable dose (\2 days)"),
    (r"^(.+) at a stable dose$", r"you take \1 at a stable dose"),
    (r"^(.+) was taken in the past only$", r"you took \1 in the past only"),
    (r"^(.+) stopped (\d+) days ago$", r"you stopped \1 \2 days ago"),
    (r"^'(.+)' not among the patient's medications$", r"your note does not list \1 among your medicines"),
    (r"^patient does not take (.+)$", r"you do not take \1"),
    (r"^patient takes no medications$", "you take no medications"),
    (r"^patient takes (.+)$", r"you take \1"),
    (r"^patient uses contraception$", "you use contraception"),
    (r"^patient is not sexually active$", "you are not sexually active"),
    (r"^patient cannot become pregnant$", "you cannot become pregnant"),
    (r"^(.+?) (?:reported normal) vs '.*'$", r"your \1 was normal"),
    (r"^(.+?) ([0-9.?]+(?:-[0-9.?]+)?) vs '.*'$", r"your \1 is \2"),
    (r"^(.+?) not reported$", r"your note gives no \1 result"),
))


def for_patient(explanation: str) -> str:
    """The reason of an engine explanation, for the patient ("" when nothing is left to say).

    Text that is not an engine explanation (for instance the pre-screen's "This would exclude you
    because you said ...") comes back unchanged.
    """
    m = _PREFIX.match(explanation)
    if not m:
        return explanation
    label = m.group(1)
    parts = [p.strip() for p in explanation[m.end():].rstrip(".").split(";") if p.strip()]
    out: list[str] = []
    missing = False
    for part in parts:
        said = _part(part)
        if said is None:
            missing = True
        elif said and said not in out:
            out.append(said)
    if not out and (missing or not parts):
        if label == "Not excluded":
            return "your note does not mention it"
        if label in ("Not enough information", "Included", "Not included", "Excluded"):
            return "your note does not say"
        return ""
    return "; ".join(out)


def _part(part: str) -> str | None:
    """One reason in patient words; None for "the note does not mention X" (said once, generically)."""
    if part.startswith(("no mention of", "no family history of")) or part.endswith(" not mentioned") \
            or part == "the criterion has no checkable constraint":
        return None
    if part == "consent not stated":
        return "the study team asks for your consent"
    m = re.match(r"^(.+?) (?:not stated|unknown|not known)$", part)
    if m:
        thing = _UNKNOWN_THINGS.get(m.group(1))
        return f"your note does not say {thing}" if thing else f"your note does not say ({m.group(1)})"
    for rx, repl in _RULES:
        if rx.match(part):
            text = rx.sub(repl, part)
            return re.sub(r"(\d+)\.0\b", r"\1", text).replace("_", " ")
    return re.sub(r"\bpatient\b", "you", re.sub(r"\bpatient's\b", "your", part)).replace("_", " ")
