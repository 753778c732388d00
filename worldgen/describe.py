"""Describe a world in words: a short plain-English phrase -> the `WorldSpec` fields it names.

A fixed vocabulary, no model and nothing downloaded. Each word (or two-word phrase) it knows sets one or more
WorldSpec fields or names an object kind; "no" / "without" / "-less" leave an object kind (or the landmarks)
out; "low" / "high" and their kin scale the terrain word after them. Two words that set one field to different
values are an error naming both, and a word it does not know is reported (with the known word it is nearest to),
never dropped in silence. Fields no word sets keep the base spec's values. For example "snowy mountains with
a dense pine forest at sunset" is the snow biome, terrain 24 m high, 4 trees per 100 square metres (trees only),
an orange sky and a low sun.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass

import numpy as np

from worldgen.errors import SpecError
from worldgen.spec import OBJECT_KINDS, WorldSpec

MAX_CHARS = 300

# word -> ((field, value), ...): the words' meanings, the one table every use reads.
_SUNSET = (("sky_color", (0.98, 0.62, 0.42)), ("light_elevation", 8.0), ("light_azimuth", 270.0))
_DAWN = (("sky_color", (0.98, 0.78, 0.66)), ("light_elevation", 8.0), ("light_azimuth", 90.0))
_GREY_SKY = (("sky_color", (0.63, 0.65, 0.69)),)
_NIGHT = (("sky_color", (0.09, 0.11, 0.22)), ("brightness", 0.4), ("light_elevation", 40.0))
_GROUPS: tuple[tuple[tuple, str], ...] = (
    ((("biome", "grass"),), "grass grassy grassland meadow green lush prairie pasture countryside field"),
    ((("biome", "desert"),), "desert sand sandy dune arid dry"),
    ((("biome", "snow"),), "snow snowy winter wintry ice icy frozen arctic tundra polar"),
    ((("biome", "mixed"),), "mixed varied diverse"),
    ((("terrain_height", 0.5),), "flat level plain plains"),
    ((("terrain_height", 3.0),), "gentle rolling undulating"),
    ((("terrain_height", 10.0),), "hill hills hilly"),
    ((("terrain_height", 24.0),), "mountain mountains mountainous peak alpine highland"),
    ((("roughness", 0.2),), "smooth"),
    ((("roughness", 0.85),), "rugged rough jagged craggy"),
    ((("object_density", 0.0),), "empty barren bare desolate deserted"),
    ((("object_density", 0.5),), "few sparse scattered lonely"),
    ((("object_density", 4.0),), "dense thick crowded overgrown packed many lots"),
    ((("object_kinds", "tree"),), "tree pine fir oak palm"),
    ((("object_kinds", "tree"), ("~object_density", 4.0)), "forest wood woods woodland jungle"),
    ((("object_kinds", "tree"), ("~object_density", 2.5)), "grove orchard"),
    ((("object_kinds", "rock"),), "rock stone boulder pebble"),
    ((("object_kinds", "rock"), ("~roughness", 0.75)), "rocky stony"),
    ((("object_kinds", "building"),), "building house hut cabin cottage farm"),
    ((("object_kinds", "building"), ("~object_density", 2.0)), "village hamlet town"),
    ((("object_kinds", "building"), ("~object_density", 4.0)), "city"),
    ((("object_kinds", "pillar"),), "pillar column obelisk monolith temple"),
    ((("object_kinds", "building"), ("object_kinds", "pillar")), "ruin ruins"),
    ((("landmark_spacing", 40.0),), "landmark tower beacon"),
    (_SUNSET, "sunset dusk evening twilight"),
    (_DAWN, "dawn sunrise"),
    (_NIGHT, "night nighttime midnight moonlit moonlight starry"),
    ((("light_elevation", 25.0), ("light_azimuth", 110.0)), "morning"),
    ((("light_elevation", 80.0),), "noon midday"),
    ((("light_elevation", 35.0), ("light_azimuth", 240.0)), "afternoon"),
    (_GREY_SKY, "overcast cloudy gloomy grey gray stormy"),
    ((("light_elevation", 60.0),), "sunny"),
    ((("world_size", 0.0),), "endless infinite boundless vast"),
    ((("world_size", 64.0),), "bounded enclosed walled arena"),
)
_COLOURS = {"blue": (0.45, 0.65, 0.95), "pink": (0.96, 0.70, 0.80), "red": (0.90, 0.40, 0.30),
            "orange": (0.98, 0.62, 0.35), "purple": (0.62, 0.50, 0.85), "violet": (0.62, 0.50, 0.85),
            "yellow": (0.98, 0.88, 0.50), "golden": (0.98, 0.82, 0.45), "white": (0.94, 0.95, 0.97),
            "grey": (0.63, 0.65, 0.69), "gray": (0.63, 0.65, 0.69), "green": (0.62, 0.85, 0.72)}
WORDS: dict[str, tuple] = {w: meaning for meaning, words in _GROUPS for w in words.split()}
PHRASES: dict[tuple[str, str], tuple] = {
    **{(c, "sky"): (("sky_color", rgb),) for c, rgb in _COLOURS.items()},
    ("small", "world"): (("world_size", 64.0),), ("tiny", "world"): (("world_size", 32.0),),
    **{(a, h): (("terrain_height", v),) for a, v in (("rolling", 8.0), ("gentle", 6.0)) for h in ("hill", "hills")},
}
SCALES = {"low": 0.5, "small": 0.5, "little": 0.5, "high": 1.6, "tall": 1.6, "huge": 1.6, "big": 1.6,
          "giant": 1.6, "towering": 1.6, "steep": 1.6}  # scale the terrain word right after them
# a word for how many objects, right before a landmark word, says how far apart the towers stand instead ("many
# towers": closer together, not more of every object): its object density -> the landmark spacing it means there
LANDMARK_COUNTS = {0.5: 80.0, 4.0: 20.0}
NEGATIONS = {"no", "without", "not", "zero", "never"}
_LIST_WORDS = {"or", "nor", "any", "a", "an", "the"}  # a negation runs on over these ("no trees or rocks")
STOP = set("a an the with and of in on at to by near under over some full world place land landscape scene area "
           "region terrain sky clear there is are its my i want make build create give me please like where which "
           "that this has have from for between among around all every each but or nor also into lot bit very quite "
           "really covered capped topped clad dotted filled kind sort".split())


@dataclass(frozen=True)
class Description:
    """What a description made: the spec, each understood word with what it set, and the words not understood."""

    spec: WorldSpec
    understood: tuple[tuple[str, str], ...]  # (the words as written, what they set)
    unknown: tuple[str, ...]  # as written, each with "(did you mean X?)" when a known word is near

    def summary(self) -> str:
        parts = [f"{words}: {what}" for words, what in self.understood]
        if self.unknown:
            parts.append("not understood: " + ", ".join(self.unknown))
        return "; ".join(parts)


_KNOWN = set(WORDS) | set(SCALES) | {w for phrase in PHRASES for w in phrase}


def _form(word: str) -> str:
    """The vocabulary's form of `word` (a plural's -s, -es or -ies taken off), else `word` itself."""
    for form in (word, word[:-3] + "y" if word.endswith("ies") else "", word[:-2] if word.endswith("es") else "",
                 word[:-1] if word.endswith("s") else ""):
        if form in _KNOWN:
            return form
    return word


def _nearest(word: str) -> str:
    if word in SCALES:
        return f"{word} (only before a terrain word: hills, mountains)"
    near = difflib.get_close_matches(word, sorted(_KNOWN - {word}), n=1, cutoff=0.8)
    return f"{word} (did you mean {near[0]}?)" if near else word


def _setting(field: str, value) -> str:
    if field == "object_kinds":
        return f"{value}s"
    if field == "biome":
        return f"biome {value}"
    if field == "world_size":
        return f"a world {value:g} m across" if value else "an endless world"
    if field == "sky_color":
        return "sky " + ",".join(f"{c:g}" for c in value)
    unit = {"terrain_height": " m", "world_size": " m", "light_elevation": " deg", "light_azimuth": " deg",
            "landmark_spacing": " m", "object_density": " per 100 m2"}.get(field, "")
    return f"{field.replace('_', ' ')} {value:g}{unit}"


def _sets_terrain(word: str) -> bool:
    return any(f == "terrain_height" for f, _ in WORDS.get(word, ()))


def _landmark_count(word: str, nxt: str):
    """The landmark spacing `word` means right before `nxt` ("few towers": 80 m), or None."""
    meaning = WORDS.get(word, ())
    if len(meaning) == 1 and meaning[0][0] == "object_density" and any(
            f == "landmark_spacing" for f, _ in WORDS.get(nxt, ())):
        return LANDMARK_COUNTS.get(meaning[0][1])
    return None


class _Reader:
    """The state of one description as its words are read: what each field is set to and by which words."""

    def __init__(self):
        self.hard: dict[str, tuple[object, str]] = {}  # field -> (value, the words that set it)
        self.soft: dict[str, tuple[object, int]] = {}  # field -> (value, index in `said`): where no word sets it
        self.named: dict[str, str] = {}  # object kind -> the words that asked for it
        self.dropped: dict[str, str] = {}  # object kind -> the words that left it out
        self.said: list[tuple[str, list[str]]] = []  # (words, what they set)

    def set(self, field: str, value, words: str) -> None:
        old = self.hard.get(field)
        if old is not None and old[0] != value:
            raise SpecError(f"'{old[1]}' and '{words}' both set the {field.replace('_', ' ')} "
                            f"({_setting(field, old[0])} against {_setting(field, value)}): keep one")
        self.hard[field] = (value, words)

    def leave_out(self, meaning, words: str) -> None:
        kinds = [v for f, v in meaning if f == "object_kinds"]
        if kinds:
            for kind in kinds:
                if kind in self.named:
                    raise SpecError(f"'{self.named[kind]}' asks for {kind}s and '{words}' leaves them out: keep one")
                self.dropped[kind] = words
            self.said.append((words, ["no " + ", ".join(f"{k}s" for k in kinds)]))
        elif any(f == "landmark_spacing" for f, _ in meaning):
            self.set("landmark_spacing", 0.0, words)
            self.said.append((words, ["no landmarks"]))
        else:
            raise SpecError(f"'{words}': only object kinds ({', '.join(OBJECT_KINDS)}) and landmarks can be left out")

    def take(self, meaning, words: str, scale: float = 1.0) -> None:
        said: list[str] = []
        self.said.append((words, said))
        for field, value in meaning:
            if field == "object_kinds":
                if value in self.dropped:
                    raise SpecError(f"'{self.dropped[value]}' leaves {value}s out and '{words}' asks for them: "
                                    f"keep one")
                self.named.setdefault(value, words)
                said.append(f"{value}s")
            elif field.startswith("~"):
                old = self.soft.get(field[1:])
                if old is None or value > old[0]:
                    self.soft[field[1:]] = (value, len(self.said) - 1)
            else:
                value = round(value * scale, 2) if field == "terrain_height" else value
                self.set(field, value, words)
                said.append(_setting(field, value))

    def spec(self, base: WorldSpec) -> tuple[WorldSpec, tuple[tuple[str, str], ...]]:
        values = {f: v for f, (v, _) in self.hard.items()}
        for field, (value, at) in self.soft.items():
            if field not in values:
                values[field] = value
                self.said[at][1].append(_setting(field, value))
        if self.named or self.dropped:
            kinds = tuple(k for k in OBJECT_KINDS if k in self.named) if self.named else base.object_kinds
            values["object_kinds"] = tuple(k for k in kinds if k not in self.dropped)
        return dataclasses.replace(base, **values), tuple((w, ", ".join(s)) for w, s in self.said)


def describe(text: str, base: WorldSpec | None = None) -> Description:
    """The WorldSpec that `text` describes, on top of `base` (default: WorldSpec()). Raises SpecError for an
    empty or over-long text, one in which no word is known, two words that set a field to different values, a
    left-out word that is not an object kind or the landmarks, and an object kind both asked for and left out."""
    if not isinstance(text, str) or not text.strip():
        raise SpecError("describe the world in a few words, e.g. 'snowy mountains with a dense forest at sunset'")
    if len(text) > MAX_CHARS:
        raise SpecError(f"a description of {len(text)} characters is too long: at most {MAX_CHARS}")
    tokens = re.findall(r"[a-z]+|[^a-z\s]+", text.lower())
    reader, unknown = _Reader(), []
    negating, scale, i = False, None, 0
    while i < len(tokens):
        raw, word = tokens[i], _form(tokens[i])
        nxt = _form(tokens[i + 1]) if i + 1 < len(tokens) else ""
        if raw in NEGATIONS:
            negating = True
        elif (word, nxt) in PHRASES:
            words = f"{raw} {tokens[i + 1]}"
            reader.leave_out(PHRASES[word, nxt], words) if negating else reader.take(PHRASES[word, nxt], words)
            negating, i = False, i + 1
        elif word in SCALES and _sets_terrain(nxt):
            scale = (raw, SCALES[word])
        elif not negating and (spacing := _landmark_count(word, nxt)) is not None:
            reader.take((("landmark_spacing", spacing),), f"{raw} {tokens[i + 1]}")
            i += 1
        elif word in WORDS:
            if negating:
                reader.leave_out(WORDS[word], raw)
                negating = i + 1 < len(tokens) and tokens[i + 1] in _LIST_WORDS | {","}
            elif scale is not None:
                reader.take(WORDS[word], f"{scale[0]} {raw}", scale[1])
            else:
                reader.take(WORDS[word], raw)
            scale = None
        elif raw.endswith("less") and _form(raw[:-4]) in WORDS:  # "treeless"
            reader.leave_out(WORDS[_form(raw[:-4])], raw)
        elif raw in STOP or raw in _LIST_WORDS or not raw.isalpha():
            negating = negating and (raw in _LIST_WORDS or raw == ",")
            if any(c.isdigit() for c in raw):  # "30 m high": numbers are for the flags and sliders, said so
                unknown.append(f"{raw} (a number: not read)")
        else:  # not known; a negation reaches past it ("no tall trees")
            unknown.append(_nearest(word))
        i += 1
    if not reader.said:
        hint = f" ({', '.join(unknown)})" if any("did you mean" in u for u in unknown) else ""
        raise SpecError(f"no word in {text.strip()!r} is one worldgen knows{hint}: try e.g. 'snowy mountains with "
                        f"a dense forest at sunset' (`worldgen describe --help` lists every word)")
    spec, understood = reader.spec(base or WorldSpec())
    return Description(spec, understood, tuple(unknown))


def vocabulary() -> str:
    """Every word the describer knows, grouped by what it sets (for --help)."""
    lines = [f"{', '.join(words.split())}: " + "; ".join(
        _setting(f.lstrip("~"), v) + (" (unless another word sets it)" if f.startswith("~") else "")
        for f, v in meaning) for meaning, words in _GROUPS]
    lines.append(f"<{'|'.join(_COLOURS)}> sky; small world, tiny world; rolling hills, gentle hills")
    lines.append(f"before a terrain word: {', '.join(SCALES)} (x0.5 or x1.6 its height)")
    for density, spacing in LANDMARK_COUNTS.items():
        words = ", ".join(w for w, m in WORDS.items() if m == (("object_density", density),))
        lines.append(f"{words} before a landmark word: landmark spacing {spacing:g} m (not the object density)")
    lines.append(f"leave out an object kind or the landmarks: {', '.join(sorted(NEGATIONS))} X, or X-less")
    return "\n".join(lines)


_VARY_SALT = 0x5EED_DE5C  # the random descriptions' stream, apart from every other use of a world seed
_VARY_SLOTS = (  # (how often a slot is filled, its choices): one word at most per field, so no two contradict
    (1.0, ("grassy", "green meadows", "sandy desert", "dunes", "snowy", "frozen tundra")),
    (0.7, ("flat", "gentle", "rolling hills", "hills", "low mountains", "mountains", "towering mountains")),
    (0.3, ("smooth", "rugged")),
    (0.5, ("barren", "sparse", "few", "dense", "many")),
    (0.5, ("trees", "a forest", "rocks", "boulders", "houses", "a village", "ruins", "pillars", "trees and rocks",
           "no trees", "no buildings", "no pillars or rocks")),
    (0.6, ("at sunset", "at dawn", "in the morning", "at noon", "in the afternoon", "overcast", "blue sky",
           "pink sky", "orange sky", "purple sky", "golden sky", "white sky")),
    (0.1, ("no towers",)),
)


def random_description(seed: int) -> str:
    """A description drawn from world `seed` alone (`worldgen record --vary`): a biome word, then each other slot
    (terrain, roughness, how many objects, which, time of day or sky, landmarks) filled or left empty."""
    rng = np.random.default_rng([_VARY_SALT, int(seed)])
    return " ".join(str(rng.choice(choices)) for p, choices in _VARY_SLOTS if rng.random() < p)


def varied_spec(seed: int, base: WorldSpec | None = None) -> WorldSpec:
    """World `seed`'s spec under `worldgen record --vary`: `base` with `random_description(seed)` on top."""
    return describe(random_description(seed), base).spec
