"""The one table of emotion prototypes: EMFACS action units per label, and each action unit's ICT blendshapes.

Prototypes. Source: the EMFACS emotion prototypes of W. V. Friesen and P. Ekman, "EMFACS-7: Emotional
Facial Action Coding System" (unpublished manual, University of California San Francisco, 1983), as
tabulated with the FACS Investigator's Guide (P. Ekman, W. V. Friesen, J. C. Hager, "Facial Action
Coding System: The Manual / Investigator's Guide", Research Nexus, 2002, Table 10-2 "EMFACS prototypes").
Those sources list several AU combinations per emotion; each row below is the full-face prototype
commonly reproduced for it (the "Emotional expressions" table of Wikipedia's FACS article lists the
same), every action unit of the face included — brows, lids, cheeks, nose, lips and jaw. Disgust adds
AU10: EMFACS gives disgust two cores, AU9 and AU10 (9, 9+16+15+26, 9+17, 10, 10+16+25+26, 10+17), and
the nose wrinkle alone barely moves a small face, while the raised upper lip is what reads:

    label     action units                     what they do
    happy     6 + 12                           cheek raiser (squints the lower lids), lip-corner puller
    sad       1 + 4B + 15                      inner brow raiser, brow lowerer (slight), lip-corner depressor
    surprise  1 + 2 + 5B + 26                  inner + outer brow raiser, upper-lid raiser (slight), jaw drop
    fear      1 + 2 + 4B + 5 + 7 + 20 + 26     brows raised and drawn together, upper lid raised, lids
                                               tightened, lips stretched, jaw drop
    anger     4 + 5 + 7 + 23                   brow lowerer, upper-lid raiser (glare), lid tightener,
                                               lip tightener
    disgust   9 + 10 + 15 + 16                 nose wrinkler, upper-lip raiser, lip-corner depressor,
                                               lower-lip depressor

AU -> ICT blendshapes: the FACS table of the ICT-FaceKit README (`ict_facekit/README.md`, "Expression
shapes and FACS"; ICT-FaceKit, USC Institute for Creative Technologies, MIT license), bilateral AUs
driving both the _L and _R shape. ICT's shapes carry ARKit's names, so the same table maps onto
ARKit / MediaPipe blendshapes. One row departs from ICT's table: AU10 (upper-lip raiser), which ICT
puts on mouthShrugUpper, drives mouthUpperUp_L/R. ICT's mouthShrugUpper lifts the centre of the upper lip
and pushes it forward (a shrug; with a lowered lower lip it rounded the opening into an "o"), while
mouthUpperUp (ICT's AU11 row) is ARKit's and MediaPipe's "upper lip raised", at each side next to the
nose, which is AU10's action and what the disgust snarl shows. Two AUs have no ICT shape of their own:
- AU26 (jaw drop) -> `jawOpen` at a partial weight (`JAW_DROP`): ICT's jawOpen is AU27 (mouth stretch),
  a wide opening; a jaw drop is the same motion, smaller.
- AU23 (lip tightener) -> `mouthPress_L/R` (AU24, lip pressor), the closest ICT shape: both narrow the
  red of the lips, and EMFACS itself lists 4+5+7+24 as an anger variant of 4+5+7+23.

Closed-mouth labels: sad (1+4+15) and anger (4+5+7+23) carry no action unit that parts the lips
(AU16 lower-lip depressor, AU25 lips part, AU26 jaw drop, AU27 mouth stretch), and both tense the lips
closed (the lip-corner depressor pulls them down; the lip tightener presses them), so an edit to them
never opens the mouth beyond the person's own (`CLOSED_MOUTH_LABELS`). Happy's 6 + 12 has no such AU
either, but a strong lip-corner pull bares the teeth and EMFACS lists laughter as 6+12+25+26, so happy
keeps the opening the person's own smiles have.

Antagonists: AU4 (brow lowerer) pulls the brows down against AU1/AU2 (brow raisers); AU15 (lip-corner
depressor) pulls the corners down against AU12 (lip-corner puller), and AU23 (lip tightener, the
orbicularis oris) narrows the lips against it. In a prototype with both sides (sad's 1+4, fear's 1+2+4)
they combine, into the oblique, drawn-together brows; in one with only one side, a person whose brows
or lip corners rest the other way would cancel the action (an angry glare under raised brows, a sad
mouth that still smiles, a smile on corners that rest turned down — the webcam clip's happy edit read
as a straight mouth — or surprise under a resting frown), so such an edit also relaxes the other side
by its own AU's activation (`ANTAGONISTS`: AU -> the AUs it relaxes when they are not in the label's
own prototype).

Intensity letters: FACS scores intensity A (trace) .. E (maximum); `FACS_INTENSITY` gives the ICT
weight of each letter (an AU without a letter takes the prior's amplitude). Sad's and fear's AU4 is
slight (B): in both the corrugator draws the brows together while AU1 (and fear's AU2) keep them raised
(sad's oblique brow, fear's raised, straightened brow); ICT's browDown at full strength lowers the whole
brow, and with it sad and fear edits read as a frown (W011, 2026-12-01).
"""

from __future__ import annotations

from dfm.errors import DfmError

FACS_TO_ICT: dict[int, tuple[str, ...]] = {
    1: ("browInnerUp_L", "browInnerUp_R"),
    2: ("browOuterUp_L", "browOuterUp_R"),
    4: ("browDown_L", "browDown_R"),
    5: ("eyeWide_L", "eyeWide_R"),
    6: ("cheekSquint_L", "cheekSquint_R"),
    7: ("eyeSquint_L", "eyeSquint_R"),
    9: ("noseSneer_L", "noseSneer_R"),
    10: ("mouthUpperUp_L", "mouthUpperUp_R"),  # see below (ICT's README: mouthShrugUpper)
    11: ("mouthUpperUp_L", "mouthUpperUp_R"),
    12: ("mouthSmile_L", "mouthSmile_R"),
    14: ("mouthDimple_L", "mouthDimple_R"),
    15: ("mouthFrown_L", "mouthFrown_R"),
    16: ("mouthLowerDown_L", "mouthLowerDown_R"),
    17: ("mouthShrugLower",),
    18: ("mouthPucker",),
    20: ("mouthStretch_L", "mouthStretch_R"),
    22: ("mouthFunnel",),
    23: ("mouthPress_L", "mouthPress_R"),  # substitute: AU24 lip pressor (no lip-tightener shape in ICT)
    24: ("mouthPress_L", "mouthPress_R"),
    26: ("jawOpen",),  # substitute: AU27's shape at a partial weight (JAW_DROP)
    27: ("jawOpen",),
    28: ("mouthRollLower", "mouthRollUpper"),
    29: ("jawForward",),
    33: ("cheekPuff_L", "cheekPuff_R"),
    45: ("eyeBlink_L", "eyeBlink_R"),
}
JAW_DROP = 0.5  # AU26 = jawOpen at this fraction of the AU's weight

EMFACS_PROTOTYPES: dict[str, tuple[str, ...]] = {
    "happy": ("6", "12"),
    "sad": ("1", "4B", "15"),  # AU4 slight: at full strength ICT's browDown lowers the whole brow (a frown)
    "surprise": ("1", "2", "5B", "26"),
    "fear": ("1", "2", "4B", "5", "7", "20", "26"),
    "anger": ("4", "5", "7", "23"),
    "disgust": ("9", "10", "15", "16"),
}
ANTAGONISTS: dict[int, tuple[int, ...]] = {4: (1, 2), 1: (4,), 2: (4,), 15: (12,), 23: (12,), 12: (15,)}
CLOSED_MOUTH_LABELS: tuple[str, ...] = ("sad", "anger")
MOUTH_OPENING_SHAPES: tuple[str, ...] = ("jawOpen", "mouthLowerDown_L", "mouthLowerDown_R", "mouthUpperUp_L",
                                         "mouthUpperUp_R", "mouthShrugUpper")  # AU26/27, AU16, AU10 (ICT shapes)
FACS_INTENSITY = {"A": 0.2, "B": 0.4, "C": 0.6, "D": 0.8, "E": 1.0}


def parse_au(code: str) -> tuple[int, str | None]:
    """'5B' -> (5, 'B'); '12' -> (12, None)."""
    code = code.strip().upper()
    letter = code[-1] if code and code[-1] in FACS_INTENSITY else None
    number = code[:-1] if letter else code
    try:
        return int(number), letter
    except ValueError:
        raise DfmError(f"bad action unit {code!r} (expected e.g. '12' or '5B')") from None


def prototype_shapes(label: str) -> dict[str, tuple[str, ...]]:
    """{'AU5': ('eyeWide_L', 'eyeWide_R'), ...}: each action unit of a label's prototype and its ICT shapes
    ({} for neutral and unknown labels)."""
    out: dict[str, tuple[str, ...]] = {}
    for code in EMFACS_PROTOTYPES.get(label, ()):
        au, _ = parse_au(code)
        out[f"AU{au}"] = FACS_TO_ICT[au]
    return out


def relaxed_by(label: str) -> dict[str, tuple[str, ...]]:
    """{ICT shape of a prototype AU: the ICT shapes it relaxes} for the label (see ANTAGONISTS), e.g. anger:
    {'browDown_L': ('browInnerUp_L', ..., 'browOuterUp_R'), 'browDown_R': (...)}; {} when none applies."""
    aus = {parse_au(c)[0] for c in EMFACS_PROTOTYPES.get(label, ())}
    out: dict[str, tuple[str, ...]] = {}
    for au, others in ANTAGONISTS.items():
        relaxed = tuple(s for o in others if o not in aus for s in FACS_TO_ICT[o])
        if au in aus and relaxed:
            for shape in FACS_TO_ICT[au]:
                out[shape] = relaxed
    return out
