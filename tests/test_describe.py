"""Describing a world in words: what each word sets, what is left out, and a clear error for what cannot be."""
import dataclasses

import pytest

from worldgen.cli import build_parser, main, spec_from_args
from worldgen.describe import PHRASES, WORDS, describe
from worldgen.errors import SpecError
from worldgen.spec import WorldSpec


def test_a_description_sets_the_fields_it_names_and_keeps_the_rest():
    base = WorldSpec(view_distance=60.0, chunk_size=24.0)
    d = describe("Snowy mountains with a dense pine forest at sunset!", base)
    assert d.spec == dataclasses.replace(base, biome="snow", terrain_height=24.0, object_density=4.0,
                                         object_kinds=("tree",), sky_color=(0.98, 0.62, 0.42), light_elevation=8.0,
                                         light_azimuth=270.0)
    assert [w for w, _ in d.understood] == ["snowy", "mountains", "dense", "pine", "forest", "sunset"]
    assert d.unknown == ()
    # a noun's own density applies only where no word sets the density
    assert describe("a forest").spec.object_density == 4.0 and describe("a sparse forest").spec.object_density == 0.5
    assert "object density 4" in describe("a forest").summary()
    assert "object density 4" not in describe("a sparse forest").summary()
    assert describe("rolling hills under a pink sky").spec == WorldSpec(terrain_height=8.0,
                                                                          sky_color=(0.96, 0.70, 0.80))


def test_object_kinds_are_left_out_and_terrain_words_scaled():
    assert describe("a flat desert without trees or pillars").spec.object_kinds == ("rock", "building")
    s = describe("treeless low hills with rocks and no towers").spec
    assert (s.object_kinds, s.terrain_height, s.landmark_spacing) == (("rock",), 5.0, 0.0)
    assert describe("towering mountains").spec.terrain_height == pytest.approx(38.4)
    d = describe("no tall trees, and stones")  # a word it does not know does not end the negation
    assert d.spec.object_kinds == ("rock",) and d.unknown == ("tall (only before a terrain word: hills, mountains)",)
    d = describe("a tiny world of rockes and montains")
    assert d.spec.world_size == 32.0 and d.spec.object_kinds == ("rock",)
    assert d.unknown == ("montains (did you mean mountains?)",)
    d = describe("Snowy MOUNTAINS, 30 m high! 🏔")
    assert d.spec.terrain_height == 24.0 and d.unknown[0] == "30 (a number: not read)"


def test_a_word_for_how_many_before_a_landmark_word_spaces_the_towers():
    s = describe("many towers").spec  # towers closer together, and the object density left as it was
    assert (s.landmark_spacing, s.object_density) == (20.0, WorldSpec().object_density)
    s = describe("few towers in a dense forest").spec
    assert (s.landmark_spacing, s.object_density, s.object_kinds) == (80.0, 4.0, ("tree",))
    assert describe("many rocks and towers").spec.landmark_spacing == 40.0  # "many" is the rocks' here
    with pytest.raises(SpecError, match="'many towers' and 'tower' both set the landmark spacing"):
        describe("many towers, one tower")


@pytest.mark.parametrize("text, message", [
    ("", "describe the world in a few words"),
    ("   ", "describe the world in a few words"),
    ("forest " * 50, "350 characters is too long"),
    ("flat mountains", "'flat' and 'mountains' both set the terrain height"),
    ("a grey sunset", "'grey' and 'sunset' both set the sky color"),
    ("sunset at night", "'sunset' and 'night' both set the sky color"),
    ("a forest without trees", "'forest' asks for trees and 'trees' leaves them out"),
    ("no rocks but boulders", "'rocks' leaves rocks out and 'boulders' asks for them"),
    ("a world with no snow", "'snow': only object kinds"),
    ("hello there", "no word in 'hello there' is one worldgen knows"),
    ("montains", "montains (did you mean mountains?)"),
])
def test_a_bad_description_gets_one_clear_error(text, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        describe(text)


def test_every_word_alone_makes_a_valid_world():
    for word in WORDS:
        assert describe(word).understood[0][0] == word
    for phrase in PHRASES:
        assert describe(" ".join(phrase)).understood[0][0] == " ".join(phrase)


def test_describe_on_the_command_line(tmp_path, capsys):
    text = "a flat desert village under a pink sky"
    assert main(["describe", *text.split(), "--out", str(tmp_path / "spec.json")]) == 0
    assert "village: buildings, object density 2" in capsys.readouterr().err
    from_file = spec_from_args(build_parser().parse_args(["view", "--spec", str(tmp_path / "spec.json")]))
    assert from_file == describe(text).spec
    # --spec, then --describe, then the flags
    args = build_parser().parse_args(["view", "--spec", str(tmp_path / "spec.json"), "--describe", "snowy hills",
                                      "--terrain-height", "7"])
    assert spec_from_args(args) == dataclasses.replace(describe(text).spec, biome="snow", terrain_height=7.0)
    assert main(["view", "--describe", "flat mountains", "--out", str(tmp_path / "v.png")]) == 2
    assert "error: 'flat' and 'mountains' both set the terrain height" in capsys.readouterr().err
    assert not (tmp_path / "v.png").exists()


def test_random_descriptions_are_read_whole_and_vary_the_worlds():
    from worldgen.describe import random_description, varied_spec
    texts = [random_description(s) for s in range(500)]
    assert texts[:3] == [random_description(s) for s in range(3)]  # drawn from the seed alone
    for text in texts:
        assert describe(text).unknown == ()  # every word known, none contradicting another
    specs = [varied_spec(s) for s in range(500)]
    assert {s.biome for s in specs} == {"grass", "desert", "snow"}
    assert len({(s.terrain_height, s.object_density, s.sky_color) for s in specs}) > 50
