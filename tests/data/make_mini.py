"""Make tests/data/mini_akg_pruned.tsv and mini_akg_test.tsv: a small synthetic graph for fast tests.

Synthetic on purpose: the AKG (michelolzam/iknow-audio) is published without a licence, so no part
of it, not even a subset, may be copied into this repository (see README.md beside this file). This
script never reads the AKG. It writes a few hundred triples about a made-up but coherent sound
world: sound classes, their sources and events, with the AKG's 47 relation names (every one used),
in the AKG's own TSV layout (`label_name head relation tail response`, label_name = head, every
response "Yes."), and a held-out test split whose entities all occur in the training file.

Deterministic: the same files on every run (`python tests/data/make_mini.py`; `--check` only
compares). Run it from the repository root or anywhere; it writes next to itself.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HEADER = "label_name\thead\trelation\ttail\tresponse\n"
SEED = 13
TEST_SHARE = 0.1

# class -> source -> the source's sound events
WORLD: dict[str, dict[str, list[str]]] = {
    "animal": {"dog": ["dog barking", "dog growling", "puppy whimpering"], "cat": ["cat meowing", "cat purring"],
               "bird": ["bird song", "crow cawing", "owl hooting"], "cow": ["cow mooing"], "horse": ["horse neighing"]},
    "vehicle": {"car": ["car horn", "car engine idling"], "train": ["train whistle", "train on rails"],
                "motorcycle": ["motorcycle revving"], "airplane": ["jet engine roar"]},
    "music": {"bassoon": ["bassoon melody"], "violin": ["violin playing"], "piano": ["piano chord"],
              "drum": ["drum roll"], "flute": ["flute trill"], "guitar": ["guitar strumming"]},
    "water": {"rain": ["rain on roof", "raindrops"], "stream": ["stream babbling"], "ocean": ["ocean waves"],
              "faucet": ["dripping faucet"]},
    "domestic sounds": {"door": ["door knock", "door slam"], "kettle": ["kettle whistle"],
                        "vacuum cleaner": ["vacuum cleaner hum"], "alarm clock": ["alarm clock ringing"]},
    "human voice": {"speech": ["conversation", "whispering"], "laughter": ["giggling"], "baby": ["baby crying"],
                    "cough": ["coughing"]},
    "weather": {"thunder": ["thunder clap"], "wind": ["wind howling"]},
}

# what each class's events sound like, where they are heard and how they are taken
PROFILE: dict[str, dict[str, list[str]]] = {
    "animal": {"has pitch": ["high", "medium", "low"], "has loudness": ["loud", "moderate"],
               "has timbre": ["harsh", "breathy", "bright"], "has duration": ["short", "intermittent"],
               "occurs in": ["park", "farm", "forest", "home"], "perceived as": ["lively", "startling", "natural"]},
    "vehicle": {"has pitch": ["low", "medium"], "has loudness": ["loud"],
                "has timbre": ["metallic", "rumbling"], "has duration": ["long", "continuous", "short"],
                "occurs in": ["street", "city", "train station", "airport"], "perceived as": ["noisy", "urgent"]},
    "music": {"has pitch": ["low", "medium", "high"], "has loudness": ["moderate", "quiet"],
              "has timbre": ["warm", "bright", "reedy"], "has duration": ["long", "sustained"],
              "occurs in": ["concert hall", "home", "street"], "perceived as": ["pleasant", "melodic"]},
    "water": {"has pitch": ["medium", "low"], "has loudness": ["quiet", "moderate"],
              "has timbre": ["soft", "splashy"], "has duration": ["continuous", "intermittent"],
              "occurs in": ["forest", "beach", "home", "countryside"], "perceived as": ["relaxing", "natural"]},
    "domestic sounds": {"has pitch": ["medium", "high"], "has loudness": ["moderate", "loud"],
                        "has timbre": ["metallic", "muffled", "harsh"], "has duration": ["short", "long"],
                        "occurs in": ["home", "kitchen"], "perceived as": ["annoying", "familiar"]},
    "human voice": {"has pitch": ["medium", "high"], "has loudness": ["quiet", "moderate", "loud"],
                    "has timbre": ["breathy", "warm"], "has duration": ["short", "intermittent"],
                    "occurs in": ["home", "street", "office", "park"], "perceived as": ["familiar", "human"]},
    "weather": {"has pitch": ["low"], "has loudness": ["loud", "moderate"],
                "has timbre": ["rumbling", "whooshing"], "has duration": ["long", "short"],
                "occurs in": ["countryside", "city", "forest"], "perceived as": ["startling", "powerful"]},
}
EMOTION = {"animal": "joy", "vehicle": "stress", "music": "joy", "water": "calm", "domestic sounds": "boredom",
           "human voice": "warmth", "weather": "fear"}
# a second environment relation per class, so that more than one way of saying "where" is used
WHERE = {"animal": "can be heard in", "vehicle": "localized in", "music": "associated with environment",
         "water": "can be heard in", "domestic sounds": "localized in", "human voice": "associated with environment",
         "weather": "can be heard in"}

# facts about particular events and sources, for the relations that no profile covers
FACTS: list[tuple[str, str, str]] = [
    ("bassoon", "produces", "music"), ("violin", "produces", "music"), ("piano", "produces", "music"),
    ("flute", "produces", "music"), ("guitar", "produces", "music"), ("drum", "produces", "rhythm"),
    ("bassoon", "is a type of", "woodwind instrument"), ("flute", "is a type of", "woodwind instrument"),
    ("violin", "is a type of", "string instrument"), ("guitar", "is a type of", "string instrument"),
    ("bassoon melody", "performed by", "musician"), ("violin playing", "performed by", "musician"),
    ("drum roll", "performed by", "drummer"), ("piano chord", "performed by", "pianist"),
    ("dog barking", "transcribed as", "woof"), ("cat meowing", "transcribed as", "meow"),
    ("cow mooing", "transcribed as", "moo"), ("car horn", "transcribed as", "honk"),
    ("dog barking", "warns about", "stranger"), ("car horn", "warns about", "danger"),
    ("alarm clock ringing", "warns about", "wake up time"), ("baby crying", "indicates", "hunger"),
    ("kettle whistle", "indicates", "boiling water"), ("thunder clap", "indicates", "storm"),
    ("cat purring", "indicates", "contentment"), ("alarm clock ringing", "invites action", "wake up"),
    ("door knock", "invites action", "open the door"), ("baby crying", "requires attention", "parent"),
    ("kettle whistle", "requires attention", "cook"), ("dog barking", "responds to", "door knock"),
    ("puppy whimpering", "responds to", "thunder clap"), ("alarm clock ringing", "triggers", "footsteps"),
    ("thunder clap", "triggers", "dog barking"), ("door knock", "precedes", "door slam"),
    ("lightning", "precedes", "thunder clap"), ("door slam", "follows", "door knock"),
    ("thunder clap", "follows", "lightning"), ("thunder clap", "caused by", "lightning"),
    ("ocean waves", "caused by", "wind"), ("rain on roof", "caused by", "rain"),
    ("dripping faucet", "caused by", "leak"), ("jet engine roar", "generated by", "airplane"),
    ("car engine idling", "generated by", "engine"), ("vacuum cleaner hum", "generated by", "motor"),
    ("bird song", "emitted by", "songbird"), ("owl hooting", "emitted by", "owl"),
    ("whispering", "emitted by", "person"), ("conversation", "emitted by", "person"),
    ("train on rails", "event composed of", "wheel clatter"), ("drum roll", "event composed of", "drum hit"),
    ("conversation", "event composed of", "speech"), ("wheel clatter", "temporal component of", "train on rails"),
    ("drum hit", "temporal component of", "drum roll"), ("rain on roof", "co-occurs with", "thunder clap"),
    ("bird song", "co-occurs with", "stream babbling"), ("car horn", "co-occurs with", "car engine idling"),
    ("giggling", "co-occurs with", "conversation"), ("wind howling", "overlaps with", "rain on roof"),
    ("violin playing", "overlaps with", "piano chord"), ("coughing", "entails event", "throat clearing"),
    ("door knock", "entails event", "footsteps"), ("thunder clap", "entails event", "rumble"),
    ("whispering", "is variant of", "speech"), ("giggling", "is variant of", "laughter"),
    ("raindrops", "is variant of", "dripping faucet"), ("car horn", "is instance of", "signal"),
    ("train whistle", "is instance of", "signal"), ("alarm clock ringing", "is instance of", "alarm"),
    ("dog barking", "is sound of", "dog"), ("cat meowing", "is sound of", "cat"), ("cow mooing", "is sound of", "cow"),
    ("horse neighing", "is sound of", "horse"), ("train whistle", "is sound of", "train"),
    ("ocean waves", "originates from", "ocean"), ("stream babbling", "originates from", "stream"),
    ("bird song", "originates from", "tree"), ("jet engine roar", "originates from", "sky"),
    ("ocean waves", "part of scene", "beach"), ("bird song", "part of scene", "forest"),
    ("car horn", "part of scene", "traffic"), ("conversation", "part of scene", "cafe"),
    ("traffic", "scene contains", "car engine idling"), ("traffic", "scene contains", "motorcycle revving"),
    ("farm", "scene contains", "cow mooing"), ("farm", "scene contains", "horse neighing"),
    ("forest", "scene contains", "owl hooting"), ("cafe", "scene contains", "giggling"),
    ("vacuum cleaner hum", "produced during", "cleaning"), ("kettle whistle", "produced during", "cooking"),
    ("dishes", "produced during", "cooking"), ("guitar strumming", "produced during", "concert"),
    ("drum roll", "associated with event", "concert"), ("train whistle", "associated with event", "departure"),
    ("jet engine roar", "associated with event", "takeoff"), ("giggling", "associated with event", "party"),
    ("vacuum cleaner hum", "used for", "cleaning"), ("alarm clock", "used for", "waking up"),
    ("car horn", "used for", "warning"), ("whispering", "used for", "secret"),
    ("jet engine roar", "affects", "hearing"), ("thunder clap", "affects", "sleep"),
    ("dripping faucet", "affects", "concentration"), ("ocean waves", "linked to visual", "foam"),
    ("thunder clap", "linked to visual", "lightning"), ("train on rails", "linked to visual", "railway"),
    ("dog growling", "described by", "menacing"), ("cat purring", "described by", "soothing"),
    ("wind howling", "described by", "eerie"), ("stream babbling", "described by", "gentle"),
    ("dog barking", "belongs to class", "animal"), ("car horn", "belongs to class", "vehicle"),
    ("violin playing", "belongs to class", "music"), ("rain on roof", "belongs to class", "water"),
]


def world_triples() -> list[tuple[str, str, str]]:
    rng = random.Random(SEED)
    triples: list[tuple[str, str, str]] = []
    for klass, sources in WORLD.items():
        for source, events in sources.items():
            triples += [(source, "has parent", klass), (klass, "has children", source), (source, "has subtype", events[0])]
            for i, event in enumerate(events):
                triples += [(event, "has parent", source), (source, "has children", event), (event, "is a type of", klass)]
                if i + 1 < len(events):
                    triples.append((event, "has sibling", events[i + 1]))
                profile = PROFILE[klass]
                for relation in ("has pitch", "has loudness", "has timbre", "has duration", "perceived as"):
                    triples.append((event, relation, rng.choice(profile[relation])))
                places = rng.sample(profile["occurs in"], 2)
                triples += [(event, "occurs in", places[0]), (event, WHERE[klass], places[1]),
                            (event, "emotionally associated with", EMOTION[klass])]
        others = [s for s in sources]
        for a, b in zip(others, others[1:]):
            triples.append((a, "has sibling", b))
    triples += FACTS
    seen, unique = set(), []
    for t in triples:
        if t not in seen:
            seen.add(t)
            unique.append(t)
    return unique


def split(triples: list[tuple[str, str, str]]) -> tuple[list, list]:
    """About TEST_SHARE of the triples held out, never one whose head or tail would then be missing
    from training; 'bassoon produces music' always held out (tests look for facts about bassoon)."""
    rng = random.Random(SEED + 1)
    degree: dict[str, int] = {}
    for h, _, t in triples:
        degree[h] = degree.get(h, 0) + 1
        degree[t] = degree.get(t, 0) + 1
    wanted = round(len(triples) * TEST_SHARE)
    order = [("bassoon", "produces", "music")] + rng.sample([t for t in triples if t != ("bassoon", "produces", "music")],
                                                            len(triples) - 1)
    test = []
    for h, r, t in order:
        if len(test) >= wanted:
            break
        if degree[h] > 1 and degree[t] > 1 and h != t:
            test.append((h, r, t))
            degree[h] -= 1
            degree[t] -= 1
    held = set(test)
    return [t for t in triples if t not in held], test


def tsv(triples) -> str:
    return HEADER + "".join(f"{h}\t{h}\t{r}\t{t}\tYes.\n" for h, r, t in sorted(triples))


def check(train, test) -> None:
    sys.path.insert(0, str(REPO))
    from akg.relations import RELATIONS

    used = {r for _, r, _ in train}
    assert used == set(RELATIONS), f"relations missing from training: {sorted(set(RELATIONS) - used)}"
    assert not set(train) & set(test)
    train_entities = {n for h, _, t in train for n in (h, t)}
    assert all(h in train_entities and t in train_entities for h, _, t in test)


def main(argv: list[str]) -> int:
    train, test = split(world_triples())
    check(train, test)
    outputs = {HERE / "mini_akg_pruned.tsv": tsv(train), HERE / "mini_akg_test.tsv": tsv(test)}
    if "--check" in argv:
        stale = [p.name for p, text in outputs.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
        print("stale: " + ", ".join(stale) if stale else "up to date")
        return 1 if stale else 0
    for path, text in outputs.items():
        path.write_text(text, encoding="utf-8")
    print(f"{len(train)} training and {len(test)} test triples, "
          f"{len({n for h, _, t in train + test for n in (h, t)})} entities")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
