"""Condition, therapy, infection, surgery and vaccination constraints: the free-text part of an item.

After ages, labs, consent and reproductive status are taken out, what remains of a criterion names
conditions or treatments.  This module cuts it into alternatives ("A, B or C"), keeps exceptions
("except basal cell carcinoma") and time windows, and records which words a patient's note must contain
for a match, so a vague overlap cannot pass for a diagnosis.
"""

from __future__ import annotations

import re

from trialfinder.eligibility.constraints_base import Builder, c_end, c_start, negated_before
from trialfinder.eligibility.constraints_lexicon import NUM, parse_window
from trialfinder.eligibility.nlp import find_terms, parse_number, stem, tokens, unit_days
from trialfinder.eligibility.vocab import Vocab

__all__ = ["FAMILY_CRIT", "classify", "concept_cover", "extract_conditions", "phrase_tokens"]

_SURGERY = re.compile(
    r"\b(?:surgery|surgical|operation|operative|resection|laparotomy|laparoscop\w*|\w+ectomy|\w+otomy|\w+plasty|transplant\w*|amputation|bypass|grafting)\b"
)
_VACCINE = re.compile(r"\b(?:vaccin\w*|immuni[sz]ation|laiv|flumist)\b")
_EXCEPT = re.compile(
    r"\b(?:except(?:\s+for)?|excluding|other\s+than|with\s+the\s+exception\s+of|unless|but\s+not|apart\s+from|"
    r"aside\s+from|not\s+including)\b"
)
_PAREN = re.compile(r"\(([^()]*)\)")
_OR_SPLIT = re.compile(
    r"(?:,|;|\bor\b|\band/or\b|\bnor\b|(?<=[a-z])/(?=[a-z])|\bsuch as\b|\bincluding\b|\be\.g\.,?|\beg\b,?|"
    r"\bi\.e\.,?|\bie\b,?|:|\bvs\b\.?)"
)
_AND_SPLIT_INCL = re.compile(
    r"\s+(?:with|and|who (?:have|has|are|is)|presenting with|undergoing|in the setting of)\s+"
)
_AND_SPLIT_EXCL = re.compile(r"\s+(?:with|who (?:have|has|are|is)|in the setting of)\s+")


FAMILY_CRIT = re.compile(
    r"\b(?:family\s+history|first[- ]degree|second[- ]degree|relatives?|biological\s+(?:parent|mother|father)s?|"
    r"(?:mother|father|parents?|siblings?|brothers?|sisters?)\s+(?:with|who\s+(?:has|have|had)|diagnosed|affected|had|has)"
    r"(?!\s+(?:reports|says|states|tells|consent)))\b"
)

_MODIFIER_NOUNS = frozenset(
    "heart lung kidney liver skin bone blood brain eye bowel bleeding thyroid breast prostate colon lymph "
    "muscle joint nerve spine spinal".split()
)


_ABUSE_HEADS = frozenset("abuse misuse dependence addiction".split())
_ABUSE_VERB = re.compile(r"\b(?:abus(?:e|es|ing)|misus(?:e|es|ing)|addicted\s+to|dependent\s+on)\b")


def _shared_head(alts: list[str], vocab: Vocab) -> list[str]:
    """ "heart, lung, or kidney disease" -> each modifier gets the shared head noun."""
    if len(alts) < 2:
        return alts
    if _ABUSE_VERB.search(alts[0]):
        # "abusing drugs or alcohol": the verb governs the later alternatives too
        return [alts[0]] + [a if len(a.split()) > 2 or _ABUSE_VERB.search(a) else f"{a} abuse" for a in alts[1:]]
    last = alts[-1].split()
    if len(last) < 2:
        return alts
    head = last[-1]
    if head in _ABUSE_HEADS:
        # "alcohol or substance abuse": the abuse is shared; "alcohol" alone would mean any drinking
        return [a if a.split()[-1] in _ABUSE_HEADS else f"{a} {head}" for a in alts[:-1]] + [alts[-1]]
    out = []
    for a in alts[:-1]:
        words = a.split()
        w = words[0] if len(words) == 1 else ""
        modifier = (
            bool(w)
            and w not in vocab.synonym_index
            and (w in _MODIFIER_NOUNS or bool(re.search(r"(?:al|ic|ary|ous|ive|ar)$", w)))
        )
        out.append(f"{a} {head}" if modifier else a)
    return out + [alts[-1]]


_FAMILY_WORDS = frozenset(
    "family relative parent mother father sibling brother sister first-degree first degree biological".split()
)
_HEADS = frozenset("disease disorder condition syndrome illness symptom sign problem".split())


def phrase_tokens(phrase: str, vocab: Vocab) -> tuple[list[str], list[str]]:
    """Content words (stemmed) and qualifier words of a phrase; generic heads kept only for 1-word phrases."""
    core: list[str] = []
    quals: list[str] = []
    heads: list[str] = []
    for tok, _s, _e in tokens(phrase):
        if tok in vocab.qualifiers or tok.removesuffix("ly") in vocab.qualifiers:
            quals.append(tok)
        elif tok in _HEADS:
            heads.append(tok)
        elif tok in vocab.boilerplate or stem(tok) in vocab.boilerplate or tok.isdigit() or len(tok) < 2:
            continue
        else:
            core.append(tok)
    if len(core) == 1 and heads:
        core.extend(heads[:1])  # "eating disorder" must not match "eating"
    return core, quals


def classify(phrase: str, concepts: set[str], drugs: list[str]) -> str:
    if drugs:
        return "therapy"
    if concepts & {
        "hiv",
        "hepatitis_b",
        "hepatitis_c",
        "viral_hepatitis",
        "tuberculosis",
        "infection",
        "cmv",
        "malaria",
        "influenza",
        "sepsis",
    }:
        return "infection"
    if concepts & {"malignancy", "breast_cancer"}:
        return "malignancy"
    if _VACCINE.search(phrase):
        return "vaccination"
    if _SURGERY.search(phrase):
        return "surgery"
    return "condition"


_LAB_WORDS = frozenset(
    "abnormal blood count counts laboratory lab labs value values function functions marrow bone renal hepatic liver "
    "kidney organ hematologic haematologic hematological parameter parameters analytical standard normal adequate "
    "cardiac respiratory pulmonary reserve test tests result results level levels serum plasma urine range "
    "institutional limit upper lower uln x".split()
)


def _residual_text(b: Builder) -> str:
    chars = list(b.norm)
    for a, e in b.consumed:
        for i in range(a, min(e, len(chars))):
            chars[i] = " "
    text = "".join(chars)
    text = re.sub(r"\bwith\s+or\s+without\b[^,;.]*", " ", text)
    for rx in (
        r"\bwithin\s+(?:the\s+)?(?:last\s+|past\s+|previous\s+|preceding\s+|prior\s+|first\s+)?\S*\s*\w+"
        r"(?:\s+(?:before|prior\s+to|of|preceding)\s+(?:the\s+)?[\w-]+(?:\s+[\w-]+)?)?",
        r"\b(?:in|during|over|for)\s+the\s+(?:last|past|previous|preceding|prior)\s+(?:\S+\s+)?\w+",
        r"\b\d+\s*(?:hours?|days?|weeks?|months?|years?)\s+(?:before|prior\s+to|preceding)\s+(?:the\s+)?[\w-]+(?:\s+[\w-]+)?",
    ):
        text = re.sub(rx, lambda m: " " * len(m.group(0)), text)
    return text


_CAUSAL = re.compile(
    r"\b(?:due\s+to|because\s+of|secondary\s+to|caused\s+by|attributable\s+to|which\s+would|that\s+would)\b[^;()]*"
)
_FUTURE = re.compile(
    r"\b(?:candidates?\s+for|eligible\s+for|scheduled\s+(?:to\s+receive|for)|planned|plans?\s+to|to\s+receive|"
    r"will\s+(?:receive|undergo|start)|about\s+to|considered\s+for|indicated\s+for|requiring|requires?|need\s+for|"
    r"needs?|undergo(?:ing)?|referred\s+for|suitable\s+for|fit\s+for)\b[^.;]*$"
)
_INSTRUMENTAL = re.compile(
    r"\b(?:uncontrolled|controlled|refractory|resistant|unresponsive|responsive|despite|failed|failure\s+of|failing|"
    r"changes?\s+in|change\s+of|dose\s+(?:change|adjustment)s?|increase\s+in|decrease\s+in|withhold|"
    r"discontinu\w*|stop(?:ping)?|response\s+to|treated\s+successfully\s+with)\b[^.;]*$"
)
_ALLERGY = re.compile(
    r"\b(?:allerg\w*|hypersensitiv\w*|sensitivity|intoleran\w*|contraindicat\w*|contra-indicat\w*|"
    r"adverse\s+reactions?|reactions?\s+to|anaphyla\w*|idiosyncra\w*|side\s+effects?|intolerable|toxicity\s+(?:to|from))\b"
)
_POPULATION_PREFIX = re.compile(
    r"^\s*(?:for|in)\s+(?:all\s+)?(?P<what>[a-z -]{3,40}?)\s+(?:patients|subjects|participants|individuals|women|men)\s*$"
)


_CONFIRMED_BY = re.compile(
    r"\b(?:as\s+)?(?:confirmed|documented|diagnosed|proven|verified|determined|established|demonstrated)\s+"
    r"(?:by|with|on|via|using|through)\b[^;.]*"
)


#: How many words either side of a named condition can narrow it ("traumatic cause of dyspnea").
_REQUIRED_REACH = 3
_POST_MODIFIER = frozenset("by on via using at in per from performed according as".split())


def concept_cover(alt: str, vocab: Vocab) -> tuple[set[str], list[str]]:
    """Concepts named in ``alt`` and the remaining content words that must also match."""
    concepts: set[str] = set()
    covered: list[tuple[int, int]] = []
    for start, end, term in find_terms(alt, vocab.synonym_terms):
        if len(term) <= 3:
            continue
        concepts |= vocab.synonym_index.get(term, set())
        covered.append((start, end))
    if not concepts:
        return concepts, []
    specific = {k for k in concepts if k not in vocab.concept_classes}
    if specific:
        concepts = specific  # "hepatitis C infection" is about hepatitis C, not any infection
    rest = []
    toks = list(tokens(alt))
    inside = [i for i, (_t, a, e) in enumerate(toks) if any(x <= a and e <= y for x, y in covered)]
    for i, (tok, _a, _e) in enumerate(toks):
        if i in inside:
            continue
        if inside and min(abs(i - j) for j in inside) > _REQUIRED_REACH:
            continue  # words far from the named condition describe something else (a review, a scan)
        if inside and i > max(inside) and any(t in _POST_MODIFIER for t, _a, _e in toks[max(inside) + 1 : i]):
            continue  # "recurrent tumor by MRI scan": how it was shown, not a kind of tumor
        if (
            tok in vocab.boilerplate
            or tok in vocab.qualifiers
            or tok in _HEADS
            or len(tok) < 3
            or tok.isdigit()
        ):
            continue
        if tok in _FAMILY_WORDS:
            continue  # "family history of X": the relation is checked separately
        rest.append(tok)
    return concepts, rest


def extract_conditions(b: Builder, concept_only: bool) -> None:
    vocab = b.vocab
    strict_concepts = any(
        c.kind
        in (
            "consent",
            "compliance",
            "sex",
            "pregnancy",
            "pregnancy_plan",
            "lactation",
            "contraception",
            "childbearing",
            "menopause",
        )
        and not c.conditional
        for c in b.out
    )
    text = _residual_text(b)
    if len(b.full_norm) == len(text) and b.full_norm != b.norm:
        # put the exception clause back so it can be recorded as exceptions below
        cut = len(b.norm.rstrip())
        text = text[:cut] + b.full_norm[cut:]
    window = parse_window(b.norm)
    historical = bool(
        re.search(r"\b(?:history of|previous|prior|previously|ever|lifetime|in the past)\b", b.norm)
    )
    current = bool(re.search(r"\b(?:current|currently|active|ongoing|concurrent|concomitant)\b", b.norm))
    stable = re.search(
        rf"\bstable\s+(?:dose|dosing|regimen)\b[^.;]{{0,40}}?(?P<n>{NUM})\s*(?P<u>days?|weeks?|months?)",
        b.norm,
    )
    stable_days = None
    if stable:
        n = parse_number(stable.group("n"))
        if n is not None:
            stable_days = n * unit_days(stable.group("u"))
    # exceptions ("except basal cell carcinoma") are remembered, then cut from the text
    exceptions: list[str] = []
    for m in _EXCEPT.finditer(text):
        tail = re.split(r"[;.)]", text[m.end() :])[0]
        exceptions.extend(a.strip() for a in _OR_SPLIT.split(tail) if a and a.strip())
    text = _EXCEPT.split(text)[0] if _EXCEPT.search(text) else text

    # parentheticals: abbreviations and examples become alternatives, remarks are dropped
    extra: list[str] = []

    defined_before: list[int] = []  # where a numeric definition "(PFTs < 70% ...)" follows a condition

    def paren(m: re.Match[str]) -> str:
        inner = m.group(1).strip()
        if re.search(r"\d", inner) and re.search(
            r"[<>≤≥]|\b(?:less|more|greater|fewer|at least|above|below)\b", inner
        ):
            defined_before.append(m.start())
        if _CAUSAL.search(text[max(0, m.start() - 60) : m.start()]):
            return " " * len(m.group(0))  # examples of a cause ("due to asthma symptoms (cough, wheeze)")
        if "   " in inner or re.search(
            r"\b(?:not|allowed|eligible|permitted|will be|may be|can be|see|defined|unless|only)\b", inner
        ):
            return " " * len(m.group(0))
        for a in _OR_SPLIT.split(inner):
            a = (a or "").strip()
            if not a:
                continue
            if all(len(t) <= 3 for t, _x, _y in tokens(a)) and a not in vocab.synonym_index:
                continue  # "(I, II, NOS)": codes, not alternatives
            extra.append(a)
        return " " * len(m.group(0))

    text = _PAREN.sub(paren, text)
    # "sickle cell anemia confirmed by hemoglobin electrophoresis": how a diagnosis was made is not
    # something a note repeats; the diagnosis is what must match
    text = _CONFIRMED_BY.sub(lambda m: " " * len(m.group(0)), text)
    text = _CAUSAL.sub(
        lambda m: m.group(0) if re.search(r"infections?\s*$", text[: m.start()]) else " " * len(m.group(0)),
        text,
    )
    allergy = bool(_ALLERGY.search(b.norm))
    text = re.sub(r",\s*(?:and|&)\s+", ",  ", text)  # "A, B, and C" is a list, not a conjunction
    and_split = _AND_SPLIT_INCL if b.kind == "inclusion" else _AND_SPLIT_EXCL
    text = re.sub(r"\s+", " ", text)  # blanked spans leave long runs of spaces; keep the splitters linear
    segments = [s for s in and_split.split(text) if s and s.strip()]
    negated_item = b.kind == "inclusion" and bool(
        re.match(r"^\s*(?:no|not|without|absence of|free of|negative for|never)\b", b.norm)
    )
    drug_names = vocab.drug_terms
    placed: list[tuple[int, int]] = []  # (position, group) of condition alternatives
    for si, seg in enumerate(segments):
        pop = _POPULATION_PREFIX.match(seg)
        alts = [a.strip(" -,.") for a in _OR_SPLIT.split(seg) if a and a.strip(" -,.")]
        n_main = len(alts)
        lead_quals: list[str] = []
        listing = re.search(r"\b(?:including|such\s+as|e\.g\.|especially|particularly)\b", seg)
        head_quals: list[str] = []
        n_head = len(alts)
        if listing:
            # "serious bacterial infections including sepsis, pneumonia": the examples inherit "serious"
            head_quals = [q for q in phrase_tokens(seg[: listing.start()], vocab)[1]]
            n_head = len([a for a in _OR_SPLIT.split(seg[: listing.start()]) if a and a.strip(" -,.")])
        if alts:
            first_words = [stem(w) for w in re.findall(r"[a-z]+", alts[0])]
            while first_words and (first_words[0] in vocab.qualifiers or first_words[0] in vocab.boilerplate):
                w = first_words.pop(0)
                if w in vocab.qualifiers:
                    lead_quals.append(w)
            if not first_words:
                lead_quals = []  # "Severe or complicated malaria": the qualifier is an alternative itself
            elif b.kind == "inclusion" and concept_cover(alts[0], vocab)[0]:
                # "Severe TBI or craniofacial fracture": the first alternative is complete on its own.
                # (Exclusions still share qualifiers: reading them narrowly can only keep a patient in.)
                lead_quals = []
        if si == len(segments) - 1:
            alts += extra
        alts = _shared_head(alts[:n_main], vocab) + alts[n_main:]
        group = b.new_group()
        for ai, alt in enumerate(alts):
            example = ai >= n_main  # from a parenthetical "(e.g. ...)": a weaker reading
            core, quals = phrase_tokens(alt, vocab)
            if 0 < ai < n_main:
                quals = quals + [
                    q for q in lead_quals if q not in quals
                ]  # "uncontrolled bacterial or fungal infection"
            if listing and n_head <= ai < n_main:
                quals = quals + [q for q in head_quals if q not in quals]
            concepts, required = concept_cover(alt, vocab)
            if concepts:
                # "malignant" in "malignant tumors" names the concept; it is not an extra qualifier
                named = {stem(w) for _s, _e, t in find_terms(alt, vocab.synonym_terms) for w in t.split()}
                quals = [q for q in quals if q not in named]
            pop_alt = _POPULATION_PREFIX.match(alt)
            if re.search(r"\d", alt):
                required = [*required, "#quantity"]  # an unparsed amount/frequency we cannot check lexically
            drug_terms = [] if allergy else [t for _s, _e, t in find_terms(alt, drug_names)]
            if not core and not concepts and not drug_terms:
                continue
            if not concepts and not drug_terms:
                if b.has_labs and all(t in _LAB_WORDS for t in core):
                    continue  # "adequate renal function (GFR > 60)": the lab constraint carries the meaning
                if len(core) > 6:
                    continue  # long prose: too vague to match safely
                if concept_only and (len(core) < 3 or strict_concepts):
                    continue  # leftovers of an age/sex/consent item ("Female sex", "18 or older")
            pos = b.norm.find(alt)
            start, end = (pos, pos + len(alt)) if pos >= 0 else (0, len(b.norm))
            anchor = pos
            key = (drug_terms or [""])[0]
            if key and b.norm.find(key) >= 0:
                anchor = b.norm.find(key)  # "must not be taking warfarin": negation before the drug
            neg = negated_item or (b.kind == "inclusion" and anchor >= 0 and negated_before(b.norm, anchor))
            future = anchor >= 0 and bool(_FUTURE.search(b.norm[max(0, anchor - 50) : anchor]))
            future = future or (
                bool(drug_terms)
                and anchor >= 0
                and bool(_INSTRUMENTAL.search(b.norm[max(0, anchor - 40) : anchor]))
            )
            washout = b.kind == "inclusion" and bool(
                re.search(
                    r"\b(?:discontinue|stop|withdraw|taper|wash\s*out|since\s+(?:prior|last|previous))\b",
                    b.norm,
                )
            )
            kind = classify(alt, concepts, drug_terms)
            conf = 0.8 if concepts or drug_terms else 0.6
            if pos >= 0 and any(0 <= d - (pos + len(alt)) <= 3 for d in defined_before):
                conf = 0.6  # "Pulmonary disease (PFTs < 70% of predicted)": the numbers decide, not the name
            if future:
                conf = 0.6  # "candidates for chemotherapy", "scheduled to receive infliximab": not taken yet
            c = b.add(
                kind,
                start,
                end,
                0.6 if example else conf,
                group=group,
                consume=False,
                negated=neg,
                terms=drug_terms or [alt],
                concepts=sorted(concepts),
                qualifiers=quals,
                exceptions=exceptions,
                window_days=window[0] if window else None,
                min_days=(
                    window[1]
                    if window and window[1] is not None and b.kind == "inclusion"
                    else 0.0
                    if washout
                    else None
                ),
                stable_days=stable_days,
                historical=historical,
                current=current,
                value=" ".join(core),
                required=required,
                conditional=bool(pop) or bool(pop_alt),
                family=bool(
                    FAMILY_CRIT.search(
                        b.norm[max(0, anchor - 60) : anchor + len(alt)] if anchor >= 0 else b.norm
                    )
                ),
            )
            placed.append((start if pos >= 0 else 10**6, c.group))
    if b.kind == "inclusion" and placed:
        # a lab inside parentheses or joined by "or" is one more alternative of the nearby condition list
        for c in b.out:
            if c.kind != "lab":
                continue
            before, after = b.norm[: c_start(b, c)], b.norm[c_end(b, c) :]
            in_paren = before.count("(") > before.count(")")
            or_linked = bool(
                re.search(r"\b(?:or|and/or)\s*$", before[-12:]) or re.match(r"^\W*(?:or|and/or)\b", after)
            )
            if in_paren or or_linked:
                pos = c_start(b, c)
                c.group = min(placed, key=lambda pg: abs(pg[0] - pos))[1]
