"""Label sets (reasoning.labels): SALT's mapping read right, custom label files, entities chosen
against the real AKG, and the `labels` command group."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from akg.config import Settings
from akg.errors import InputError
from reasoning import labels as L
from reasoning.cli_labels import NO_ENTITY, labels as labels_cli

PAPER_COUNTS = {
    "esc50": 50,
    "urbansound8k": 10,
    "fsd50k": 200,
    # AudioSet's released label set has 527 classes; SALT maps 48 more AudioSet ontology classes
    # (Bassoon, Oboe, Drum beat, Melody...) and lacks `Snicker` under AudioSet: 527 - 1 + 48.
    "audioset": 574,
    "tut2016": 17,
    "tut2017": 6,
    "dcase2017task4": 17,
}


@pytest.fixture(scope="module")
def label_dir(shared_dir: Path) -> Path:
    found = shared_dir / "label_sets"
    if not (found / L.MAPPING_FILE).is_file():
        pytest.skip("SALT's label mapping is not here: run `akg dataset fetch`")
    return found


@pytest.fixture
def env(label_dir, monkeypatch) -> Path:
    """find_mapping finds the shared mapping through AKG_LABEL_SETS_DIR."""
    monkeypatch.setenv("AKG_LABEL_SETS_DIR", str(label_dir))
    return label_dir / L.MAPPING_FILE


def salt_datasets(mapping: Path) -> set[str]:
    """The dataset column, read naively (independently of the module)."""
    rows = [line.split("\t") for line in mapping.read_text(encoding="utf-8").splitlines()[1:]]
    return {r[2].strip() for r in rows if len(r) == 3 and r[1].strip() and r[2].strip()}


def by_name(label_set: L.LabelSet) -> dict[str, L.Label]:
    return {label.name: label for label in label_set.labels}


# ---------------------------------------------------------------------------------------------
# SALT's mapping


@pytest.mark.parametrize("key,count", sorted(PAPER_COUNTS.items()))
def test_paper_label_sets_and_their_sizes(env, key, count):
    label_set = L.load(key)
    assert (label_set.key, len(label_set.labels)) == (key, count)
    assert len({label.name for label in label_set.labels}) == count
    assert label_set.source == str(env)
    assert all(label.entity is None for label in label_set.labels)  # no graph asked yet


def test_every_dataset_of_the_mapping_has_a_key(env):
    rows = L.available(L.find_mapping())
    salt = salt_datasets(env)
    assert len(salt) == 28  # the brief says 27: the mapping has 28 (STARSS22 and STARSS23, MAESTRO real and synthetic...)
    assert {r["salt"] for r in rows if "subset_of" not in r} == salt
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == len(salt) + len(L.SUBSETS)
    assert all(k.isalnum() and k == k.lower() for k in keys)
    named = {r["salt"]: r["key"] for r in rows if "subset_of" not in r}
    assert {named[s] for s in ("Esc50", "UrbanSound8k", "Freesound50k", "AudioSet", "TutSoundEvents2016",
                               "TutSoundEvents2017")} == {"esc50", "urbansound8k", "fsd50k", "audioset", "tut2016", "tut2017"}
    assert named["VggSound"] == "vggsound" and named["TauSpatialSoundEvents2020"] == "tauspatialsoundevents2020"
    counts = {r["key"]: r["labels"] for r in rows}
    assert all(counts[k] == n for k, n in PAPER_COUNTS.items())
    assert all(counts[r["key"]] == len(L.load(r["key"])) for r in rows)


@pytest.mark.parametrize("name,key", [("ESC50", "esc50"), ("Esc50", "esc50"), ("ESC-50", "esc50"),
                                      ("Freesound50k", "fsd50k"), ("FSD50K", "fsd50k"), ("UrbanSound8K", "urbansound8k"),
                                      ("TutSoundEvents2017", "tut2017"), ("DCASE 2017 Task 4", "dcase2017task4"),
                                      ("AudioSetStrong", "audiosetstrong")])
def test_names_keys_and_titles_are_accepted(env, name, key):
    assert L.load(name).key == key


def test_an_unknown_name_lists_the_keys(env):
    with pytest.raises(InputError, match=r"no label set 'esc51'.*esc50.*fsd50k"):
        L.load("esc51")


def test_events_are_normalised_and_most_specific_first(env):
    us8k = by_name(L.load("urbansound8k"))
    # the mapping lists these from the most general down (animal, domestic_animal, dog, dog_barking)
    assert us8k["dog_bark"] == L.Label("dog_bark", "dog bark", ("dog barking", "dog", "domestic animal", "animal"))
    # the hierarchy puts gunshot, explosion and non-machinery_impact side by side: the leaf first
    assert us8k["gun_shot"].events == ("gunshot", "explosion", "non-machinery impact", "sound of things")
    assert us8k["engine_idling"].events[0] == "engine idling"
    assert us8k["car_horn"].events[:3] == ("car horn", "vehicle horn", "road vehicle")
    esc = by_name(L.load("esc50"))
    assert esc["crying_baby"].events[:2] == ("baby crying", "crying")  # the row is repeated in the mapping
    assert esc["chirping_birds"].text == "chirping birds"
    assert esc["dog"].events == ("dog", "domestic animal", "animal")
    fsd = by_name(L.load("fsd50k"))
    assert fsd["Bird_vocalization_and_bird_call_and_bird_song"].text == "Bird vocalization and bird call and bird song"
    assert all(e == e.lower() and "_" not in e for lb in fsd.values() for e in lb.events)
    tut = L.load("tut2016")
    assert "water tap running" in by_name(tut)  # written 'water tap running ' in the mapping
    assert [lb.name for lb in L.load("tut2017").labels] == [
        "brakes squeaking", "car", "large vehicle", "people walking", "children", "people speaking"]


def test_one_label_in_two_spellings_is_one_label(env):
    fsd = L.load("fsd50k")
    names = by_name(fsd)
    assert "Engine starting" not in names and "Marimba, xylophone" not in names
    assert names["Engine_starting"].events[0] == "engine starting"
    assert names["Marimba_and_xylophone"].events[0] == "marimba and xylophone"  # only the stray spelling had it
    assert names["Scratching_(performance_technique)"].events[0] == "vinyl scratching"
    assert len(fsd.notes) == 3
    audioset = by_name(L.load("audioset"))
    assert "Marimba, xylophone" in audioset and "Marimba_and_xylophone" not in audioset
    assert "Snicker" not in audioset and "Bassoon" in audioset
    assert len(L.load("animalsound")) == 10  # `Dog` and `dog`


def test_dcase2017_task4_is_seventeen_audioset_classes(env):
    dcase = L.load("dcase2017task4")
    audioset = by_name(L.load("audioset"))
    assert [lb.name for lb in dcase.labels][:3] == ["Train horn", "Air horn, truck horn", "Car alarm"]
    assert all(audioset[lb.name] == lb for lb in dcase.labels)
    with pytest.raises(InputError, match="'Snicker'"):
        L.subset(L.load("audioset"), ["Car", "Snicker"], "x", "x")


def write_mapping(folder: Path, rows: list[str], roots: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / L.ROOTS_FILE).write_text(json.dumps(roots), encoding="utf-8")
    path = folder / L.MAPPING_FILE
    path.write_text("standard_event\tdataset_label\tdataset\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_blank_and_repeated_rows_are_skipped_and_order_is_first_appearance(tmp_path):
    roots = {"animal": {"animal": {"dog": {"dog_barking": {}}, "dog_barking": {}, "cat": {}}},
             "other": {"other": {}}}
    rows = ["animal\tbark\tToy", "\t\t", "", "dog\tbark\tToy", "animal\tmeow\tToy", "dog_barking\tbark\tToy",
            "animal\tbark\tToy", "cat\tmeow\tToy", "other\t\tToy", "  \t \t ", "animal\tCat_purr\tOther",
            "unknown_event\tmeow\tToy"]
    path = write_mapping(tmp_path / "m", rows, roots)
    toy = L.load("toy", path)
    assert toy.key == "toy" and toy.title == "Toy"
    assert toy.labels == (L.Label("bark", "bark", ("dog barking", "dog", "animal")),
                          L.Label("meow", "meow", ("cat", "animal", "unknown event")))
    assert L.load("TOY", path) == toy and L.load("toy", path).identity() == toy.identity()
    assert [(r["key"], r["salt"], r["labels"]) for r in L.available(path)] == [("other", "Other", 1), ("toy", "Toy", 2)]
    bad = write_mapping(tmp_path / "bad", ["animal\tbark"], roots)
    with pytest.raises(InputError) as e:
        L.load("toy", bad)
    assert (e.value.file, e.value.line) == (str(bad), 2)
    (tmp_path / "m" / L.ROOTS_FILE).unlink()
    with pytest.raises(InputError, match="salt_event_roots.json"):
        L.load("toy", tmp_path / "m")


def test_find_mapping(tmp_path, monkeypatch, label_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AKG_LABEL_SETS_DIR", raising=False)
    with pytest.raises(InputError) as e:
        L.find_mapping()
    message = str(e.value)
    assert "akg dataset fetch" in message and "--from DIR" in message and "AKG_LABEL_SETS_DIR" in message
    assert str(Settings.from_env().data_dir / "label_sets" / "salt_event_mapping.tsv") in message  # AKG_HOME/data
    monkeypatch.setenv("AKG_LABEL_SETS_DIR", str(tmp_path))
    with pytest.raises(InputError, match="AKG_LABEL_SETS_DIR=.*no salt_event_mapping.tsv"):
        L.find_mapping()
    with pytest.raises(InputError, match="no such file"):
        L.find_mapping(tmp_path / "nope.tsv")
    assert L.find_mapping(label_dir) == label_dir / L.MAPPING_FILE  # the folder will do
    assert L.find_mapping(label_dir / L.MAPPING_FILE) == label_dir / L.MAPPING_FILE
    # the current folder plays no part: a ./AKG_dataset/label_sets there is not looked at ...
    (tmp_path / "AKG_dataset" / "label_sets").mkdir(parents=True)
    (tmp_path / "AKG_dataset" / "label_sets" / L.MAPPING_FILE).write_text("x")
    monkeypatch.delenv("AKG_LABEL_SETS_DIR")
    monkeypatch.setenv("AKG_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(InputError, match="was not found"):
        L.find_mapping()
    # ... the data folder is, from any folder
    (tmp_path / "data" / "label_sets").mkdir(parents=True)
    (tmp_path / "data" / "label_sets" / L.MAPPING_FILE).write_text("x")
    monkeypatch.chdir("/")
    assert L.find_mapping() == tmp_path / "data" / "label_sets" / L.MAPPING_FILE
    monkeypatch.setenv("AKG_LABEL_SETS_DIR", str(label_dir))  # the environment comes first
    assert L.find_mapping() == label_dir / L.MAPPING_FILE


# ---------------------------------------------------------------------------------------------
# Custom label files


def test_custom_label_file(tmp_path, monkeypatch):
    monkeypatch.delenv("AKG_LABEL_SETS_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # no mapping anywhere: a file needs none
    path = tmp_path / "my labels.txt"
    path.write_bytes("\ufeff# my classes\r\n\r\ndog_bark\tDog_Barking\r\n  Rain on roof  \r\n   # indented comment\n"
                     "café\n".encode("utf-8"))
    label_set = L.load(str(path))
    assert (label_set.key, label_set.source) == ("custom:my labels.txt", str(path))
    assert label_set.labels == (L.Label("dog_bark", "dog bark", ("dog barking",), "dog barking"),
                                L.Label("Rain on roof", "Rain on roof", ()),
                                L.Label("café", "café", ()))
    assert L.load("my labels.txt").labels == label_set.labels  # a file in the working folder
    assert L.load_file(path) == label_set


@pytest.mark.parametrize("content,line,problem", [
    (b"# only a comment\n\n", None, "no labels"),
    (b"", None, "no labels"),
    (b"dog\ncat\tcat\textra\n", 2, "found 3 tab-separated columns"),
    (b"dog\n# x\nDog\n", 3, "duplicate label 'Dog': already on line 1"),
    (b"dog_bark\ndog bark\n", 2, "duplicate label"),
    (b"dog\n\tcat\n", 2, "empty label"),
    (b"dog\nca\xfft\n", 2, "not valid UTF-8"),
])
def test_bad_label_files_name_file_and_line(tmp_path, content, line, problem):
    path = tmp_path / "labels.txt"
    path.write_bytes(content)
    with pytest.raises(InputError, match=problem) as e:
        L.load(str(path))
    assert (e.value.file, e.value.line) == (str(path), line)


def test_missing_label_file_or_folder(tmp_path):
    with pytest.raises(InputError, match="no such file") as e:
        L.load(str(tmp_path / "nope.txt"))
    assert e.value.file == str(tmp_path / "nope.txt")
    with pytest.raises(InputError, match="is a directory"):
        L.load_file(tmp_path)


# ---------------------------------------------------------------------------------------------
# Entities


def test_resolve_entities_rules_without_a_graph(env):
    asked = []

    def existing(names):
        asked.append(list(names))
        return {"dog", "domestic animal", "air conditioner", "siren", "animal"} & set(names)

    us8k = L.resolve_entities(L.load("urbansound8k"), existing)
    chosen = {lb.name: lb.entity for lb in us8k.labels}
    assert chosen["dog_bark"] == "dog"               # the most specific event the AKG has
    assert chosen["air_conditioner"] == "air conditioner"
    assert chosen["siren"] == "siren"                # no event is an entity, the label text is
    assert chosen["gun_shot"] is None and len(us8k.labels) == 10
    assert len(asked) == 1 and asked[0] == sorted(set(asked[0]))  # one question, no repeats
    assert us8k.coverage() == {"labels": 10, "with_entity": 3, "ratio": 0.3,
                               "missing": [lb.name for lb in us8k.labels if lb.entity is None]}


@pytest.fixture(scope="module")
def akg_graph(graph, akg_dir):
    """The session's graph holding exactly the pruned AKG (as `empty_graph` + ingest, once per module)."""
    from akg_loader.ingest import ingest
    from akg_loader.tsv import read_file

    graph.write("MATCH (e:Entity) DETACH DELETE e")
    ingest(graph, [read_file(akg_dir / "AKG_pruned.tsv")])
    return graph


def test_existing_entities_query(akg_graph):
    existing = L.graph_existing(akg_graph, batch=2)
    assert existing(["dog", "nope", "dog barking", "rain", "no such thing"]) == {"dog", "dog barking", "rain"}
    assert existing([]) == set()


def test_resolve_entities_against_the_pruned_akg(env, akg_graph):
    existing = L.graph_existing(akg_graph)
    esc = L.resolve_entities(L.load("esc50"), existing)
    assert by_name(esc)["dog"].entity == "dog"
    assert by_name(esc)["crying_baby"].entity == "baby crying"
    us8k = L.resolve_entities(L.load("urbansound8k"), existing)
    assert by_name(us8k)["dog_bark"].entity == "dog barking"
    assert us8k.coverage()["ratio"] >= 0.9
    fsd = L.resolve_entities(L.load("fsd50k"), existing)
    # the AKG is built on SALT's events: every label of the three gets one, almost always its most specific
    assert [s.coverage()["ratio"] for s in (esc, us8k, fsd)] == [1.0, 1.0, 1.0]
    assert all(lb.entity == lb.events[0] for lb in esc.labels + us8k.labels)
    # a label none of whose events (nor its text) is an AKG entity: None, and it stays in the set
    chime = L.resolve_entities(L.load("chimehome"), existing)
    orphan = by_name(chime)["Other identifiable sounds"]
    assert orphan.events == ("other",) and orphan.entity is None
    assert len(chime.labels) == 8 and chime.coverage()["missing"] == ["Other identifiable sounds"]
    assert not existing(list(orphan.events) + ["other identifiable sounds"])


def test_identity_follows_the_entities(env, akg_graph):
    esc = L.resolve_entities(L.load("esc50"), L.graph_existing(akg_graph))
    again = L.resolve_entities(L.load("esc50"), L.graph_existing(akg_graph))
    assert esc.identity() == again.identity() and len(esc.identity()) == 64
    assert esc.identity() != L.load("esc50").identity()  # before entities were chosen
    changed = replace(esc, labels=(replace(esc.labels[0], entity="something else"),) + esc.labels[1:])
    assert changed.identity() != esc.identity()
    assert replace(esc, key="other").identity() != esc.identity()
    assert L.load("urbansound8k").identity() != L.load("esc50").identity()


# ---------------------------------------------------------------------------------------------
# The `labels` command group (registered as `akg labels` in pyproject.toml)


def run(*args: str):
    return CliRunner().invoke(labels_cli, list(args), catch_exceptions=False)


def test_cli_list_shows_every_dataset_with_coverage(env, akg_graph):
    result = run("list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "AKG coverage" in lines[0]
    keys = {r["key"] for r in L.available(env)}
    listed = {line.split()[0] for line in lines[1:-1]}
    assert listed == keys and len(keys) == 29
    esc = next(line for line in lines if line.startswith("esc50 "))
    assert "ESC-50" in esc and " 50 " in esc and "%" in esc
    data = json.loads(run("list", "--json").output)
    assert len(data["label_sets"]) == 29
    esc = next(r for r in data["label_sets"] if r["key"] == "esc50")
    assert esc["labels"] == 50 and esc["coverage"]["labels"] == 50 and esc["coverage"]["ratio"] >= 0.9


def test_cli_show(env, akg_graph):
    result = run("show", "esc50")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("esc50: ESC-50, 50 labels") and lines[1].startswith("AKG coverage: ")
    rows = lines[3:]
    assert len(rows) == 50
    dog = next(line for line in rows if line.startswith("dog "))
    assert dog.split()[:3] == ["dog", "dog", "dog"] and "domestic animal, animal" in dog
    data = json.loads(run("show", "ESC-50", "--json").output)
    assert len(data["labels"]) == 50 and data["coverage"]["labels"] == 50
    assert next(lb for lb in data["labels"] if lb["name"] == "crying_baby")["entity"] == "baby crying"
    offline = run("show", "urbansound8k", "--no-graph")
    assert offline.exit_code == 0 and "AKG coverage" not in offline.output
    assert all(NO_ENTITY in line for line in offline.output.splitlines()[2:])
    missing = CliRunner().invoke(labels_cli, ["show", "esc51", "--no-graph"])
    assert missing.exit_code == 1 and "no label set 'esc51'" in missing.output


def test_cli_without_a_mapping(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AKG_LABEL_SETS_DIR", raising=False)
    result = CliRunner().invoke(labels_cli, ["list", "--no-graph"])
    assert result.exit_code == 1 and "akg dataset fetch" in result.output
