"""The course's canonical genre taxonomy and the tables that map raw labels onto it.

The CMU corpus has 363 raw Freebase genres with many near-duplicates ("Romance
Film", "Romantic comedy", "Romantic drama"); the Netflix file has 42 categories
with TV/movie twins ("Dramas", "TV Dramas"); TMDB's ``movies_metadata.csv`` has 20 genres
("Science Fiction", "TV Movie", "Foreign", ...). All are mapped onto 22 coarse genres
that a reader can predict from a plot. A raw label may map to several canonical
genres ("Romantic comedy" -> Romance + Comedy) or to none: labels that describe
the film's form or release rather than its story ("Black-and-white", "Short Film",
"Silent film", "Classic Movies", "TV Shows", ...) are left out on purpose.

Run ``python -m utils.data.genres`` to print how much of the real CMU metadata the
mapping covers.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

CANONICAL_GENRES = [
    "Action & Adventure", "Animation", "Biography & History", "Comedy", "Crime",
    "Documentary", "Drama", "Family & Kids", "Horror", "Independent", "LGBTQ",
    "Music & Musical", "Mystery", "Reality & Talk", "Romance", "Sci-Fi & Fantasy",
    "Sports", "Teen & Coming of Age", "Thriller", "War", "Western", "World Cinema",
]

# canonical genre -> raw CMU (Freebase) genre names
CMU_GROUPS: dict[str, list[str]] = {
    "Action & Adventure": [
        "Action", "Adventure", "Action/Adventure", "Martial Arts Film", "Action Thrillers",
        "Superhero movie", "Superhero", "Disaster", "Family-Oriented Adventure", "Fantasy Adventure",
        "Action Comedy", "Adventure Comedy", "Swashbuckler films", "Wuxia", "Chase Movie",
        "Costume Adventure", "Combat Films", "Jungle Film", "Sword and sorcery", "Sword and sorcery films",
        "Glamorized Spy Film", "Samurai cinema", "Sci-Fi Adventure", "Sword and Sandal", "Biker Film",
        "Outlaw biker film", "Buddy cop", "Natural disaster", "Space opera", "Ninja movie",
        "Blaxploitation", "Movies About Gladiators", "Tokusatsu", "Escape Film", "Spy", "Heist",
    ],
    "Animation": [
        "Animation", "Anime", "Computer Animation", "Stop motion", "Animated cartoon",
        "Animated Musical", "Clay animation", "Silhouette animation",
    ],
    "Biography & History": [
        "Biography", "Biographical film", "Biopic [feature]", "History", "Historical fiction",
        "Period piece", "Costume drama", "Historical drama", "Historical Epic", "Docudrama",
        "Sword and Sandal", "Hagiography", "World History", "Movies About Gladiators",
        "Historical Documentaries",
    ],
    "Comedy": [
        "Comedy", "Comedy film", "Romantic comedy", "Comedy-drama", "Black comedy", "Parody",
        "Satire", "Slapstick", "Buddy film", "Sex comedy", "Crime Comedy", "Screwball comedy",
        "Comedy of manners", "Horror Comedy", "Musical comedy", "Fantasy Comedy", "Domestic Comedy",
        "Comedy of Errors", "Mockumentary", "Action Comedy", "Adventure Comedy", "Political satire",
        "Workplace Comedy", "Stand-up comedy", "Comedy Thriller", "Media Satire", "Comedy Western",
        "Tragicomedy", "Gross-out film", "Gross out", "Stoner film", "Heavenly Comedy",
        "Comedy horror", "Buddy cop", "Courtroom Comedy", "Female buddy film", "Buddy Picture",
        "Chick flick", "Beach Party film", "Ealing Comedies", "Humour", "Comdedy",
    ],
    "Crime": [
        "Crime Fiction", "Crime Thriller", "Crime Drama", "Film noir", "Gangster Film", "Detective",
        "Detective fiction", "Crime Comedy", "Courtroom Drama", "Heist", "Prison", "Caper story",
        "Law & Crime", "Neo-noir", "Juvenile Delinquency Film", "Crime", "Future noir",
        "Master Criminal Films", "Women in prison films", "Buddy cop", "Prison film", "Legal drama",
        "Courtroom Comedy", "Prison escape", "Blaxploitation",
    ],
    "Documentary": [
        "Documentary", "Concert film", "Rockumentary", "Culture & Society", "Nature", "Educational",
        "Anthropology", "Archaeology", "Environmental Science", "News", "Travel",
        "Political Documetary", "Historical Documentaries", "Media Studies",
    ],
    "Drama": [
        "Drama", "Romantic drama", "Comedy-drama", "Family Drama", "Political drama", "Melodrama",
        "Crime Drama", "Costume drama", "Historical drama", "Docudrama", "Courtroom Drama",
        "Musical Drama", "Marriage Drama", "Erotic Drama", "Childhood Drama", "Tragedy",
        "Tragicomedy", "Addiction Drama", "Inspirational Drama", "Fantasy Drama", "Legal drama",
        "Kitchen sink realism", "Slice of life story", "Social problem film", "Social issues",
        "Family & Personal Relationships", "Interpersonal Relationships", "Illnesses & Disabilities",
    ],
    "Family & Kids": [
        "Family Film", "Children's/Family", "Children's", "Children's Fantasy",
        "Family-Oriented Adventure", "Animal Picture", "Holiday Film", "Christmas movie",
        "Fairy tale", "Children's Entertainment", "Animals", "Children's Issues",
    ],
    "Horror": [
        "Horror", "Slasher", "Creature Film", "Zombie Film", "Horror Comedy", "Monster movie",
        "Natural horror films", "Sci-Fi Horror", "Monster", "Haunted House Film", "Gothic Film",
        "Costume Horror", "Giallo", "Splatter film", "Comedy horror", "Road-Horror", "Psycho-biddy",
        "Psychological horror", "Werewolf fiction", "Vampire movies", "Demonic child", "Plague",
        "Period Horror", "Supernatural",
    ],
    "Independent": ["Indie", "Mumblecore", "Dogme 95", "Experimental film", "Avant-garde", "Art film"],
    "LGBTQ": ["LGBT", "Gay Themed", "Gay", "Gay Interest", "New Queer Cinema"],
    "Music & Musical": [
        "Musical", "Music", "Musical comedy", "Concert film", "Rockumentary", "Musical Drama",
        "Dance", "Hip hop movies", "Punk rock", "Animated Musical", "Backstage Musical",
        "Instrumental Music", "Jukebox musical", "Operetta", "Film-Opera", "Singing cowboy",
        "Breakdance",
    ],
    "Mystery": [
        "Mystery", "Detective", "Detective fiction", "Whodunit", "Giallo", "Suspense",
    ],
    "Reality & Talk": [],
    "Romance": [
        "Romance Film", "Romantic drama", "Romantic comedy", "Romantic fantasy", "Romantic thriller",
        "Chick flick",
    ],
    "Sci-Fi & Fantasy": [
        "Science Fiction", "Fantasy", "Supernatural", "Children's Fantasy", "Superhero movie",
        "Superhero", "Fantasy Comedy", "Fantasy Adventure", "Sci-Fi Horror", "Doomsday film",
        "Alien Film", "Dystopia", "Time travel", "Romantic fantasy", "Fairy tale", "Sword and sorcery",
        "Sword and sorcery films", "Apocalyptic and post-apocalyptic fiction", "Steampunk",
        "Sci-Fi Adventure", "Mythological Fantasy", "Future noir", "Heavenly Comedy",
        "Heaven-Can-Wait Fantasies", "Fantasy Drama", "Space western", "Alien invasion",
        "Science fiction Western", "Cyberpunk", "Space opera", "Sci-Fi Thriller",
        "Sci Fi Pictures original films", "Tokusatsu", "Wuxia", "Creature Film", "Monster movie",
    ],
    "Sports": [
        "Sports", "Auto racing", "Boxing", "Extreme Sports", "Horse racing", "Baseball",
    ],
    "Teen & Coming of Age": [
        "Teen", "Coming of age", "Coming-of-age film", "Juvenile Delinquency Film", "School story",
        "Beach Film", "Beach Party film",
    ],
    "Thriller": [
        "Thriller", "Crime Thriller", "Psychological thriller", "Suspense", "Action Thrillers",
        "Spy", "Political thriller", "Erotic thriller", "Comedy Thriller", "Glamorized Spy Film",
        "Psycho-biddy", "Sci-Fi Thriller", "Romantic thriller", "Conspiracy fiction", "Revenge",
    ],
    "War": [
        "War film", "Combat Films", "Anti-war", "Anti-war film", "Cavalry Film", "Gulf War",
        "The Netherlands in World War II", "Nuclear warfare", "Foreign legion", "War effort",
        "Propaganda film",
    ],
    "Western": [
        "Western", "Spaghetti Western", "Comedy Western", "Revisionist Western", "B-Western",
        "Hybrid Western", "Indian Western", "Epic Western", "Cavalry Film", "Space western",
        "Science fiction Western", "Acid western", "Singing cowboy", "Northern",
    ],
    "World Cinema": [
        "World cinema", "Japanese Movies", "Chinese Movies", "Bollywood", "Filipino Movies",
        "Tamil cinema", "Tollywood", "Samurai cinema", "Malayalam Cinema", "Bengali Cinema",
        "Filipino", "Pinku eiga", "Czechoslovak New Wave",
    ],
}

# canonical genre -> raw Netflix categories (TV/movie twins merged)
NETFLIX_GROUPS: dict[str, list[str]] = {
    "Action & Adventure": ["Action & Adventure", "TV Action & Adventure"],
    "Animation": ["Anime Series", "Anime Features"],
    "Comedy": ["Comedies", "TV Comedies", "Stand-Up Comedy", "Stand-Up Comedy & Talk Shows"],
    "Crime": ["Crime TV Shows"],
    "Documentary": ["Documentaries", "Docuseries", "Science & Nature TV"],
    "Drama": ["Dramas", "TV Dramas"],
    "Family & Kids": ["Children & Family Movies", "Kids' TV"],
    "Horror": ["Horror Movies", "TV Horror"],
    "Independent": ["Independent Movies"],
    "LGBTQ": ["LGBTQ Movies"],
    "Music & Musical": ["Music & Musicals"],
    "Mystery": ["TV Mysteries"],
    "Reality & Talk": ["Reality TV", "Stand-Up Comedy & Talk Shows"],
    "Romance": ["Romantic Movies", "Romantic TV Shows"],
    "Sci-Fi & Fantasy": ["Sci-Fi & Fantasy", "TV Sci-Fi & Fantasy"],
    "Sports": ["Sports Movies"],
    "Teen & Coming of Age": ["Teen TV Shows"],
    "Thriller": ["Thrillers", "TV Thrillers"],
    "World Cinema": ["International Movies", "International TV Shows", "British TV Shows",
                     "Spanish-Language TV Shows", "Korean TV Shows"],
}

# canonical genre -> TMDB's 20 genres (movies_metadata.csv). Decisions: "Science Fiction" and "Fantasy" both
# go to Sci-Fi & Fantasy; "Foreign" (TMDB's mark of a non-English-language film) goes to World Cinema, as
# Netflix's "International Movies" and CMU's "World cinema" do; "TV Movie" is left out (TMDB_UNMAPPED): it
# says how a film was released, not what its story is, as CMU's "Television movie" (left out too).
TMDB_GROUPS: dict[str, list[str]] = {
    "Action & Adventure": ["Action", "Adventure"],
    "Animation": ["Animation"],
    "Biography & History": ["History"],
    "Comedy": ["Comedy"],
    "Crime": ["Crime"],
    "Documentary": ["Documentary"],
    "Drama": ["Drama"],
    "Family & Kids": ["Family"],
    "Horror": ["Horror"],
    "Music & Musical": ["Music"],
    "Mystery": ["Mystery"],
    "Romance": ["Romance"],
    "Sci-Fi & Fantasy": ["Science Fiction", "Fantasy"],
    "Thriller": ["Thriller"],
    "War": ["War"],
    "Western": ["Western"],
    "World Cinema": ["Foreign"],
}

# Frequent CMU labels deliberately left unmapped: form, format, era, audience or origin of
# the film rather than its story (tests check that every raw label used by 200+ movies
# is either mapped or listed here).
CMU_UNMAPPED = ["Black-and-white", "Short Film", "Silent film", "Film adaptation", "Television movie",
                "Cult", "B-movie", "Ensemble Film", "Political cinema", "Road movie",
                "Pornographic movie", "Erotica", "Epic", "Adult", "Pre-Code"]

# Raw labels deliberately left unmapped: they describe form, era or audience, not the story.
NETFLIX_UNMAPPED = ["Classic Movies", "Cult Movies", "Classic & Cult TV", "Faith & Spirituality",
                    "Movies", "TV Shows"]
TMDB_UNMAPPED = ["TV Movie"]


def _invert(groups: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for canonical, raws in groups.items():
        if canonical not in CANONICAL_GENRES:
            raise ValueError(f"{canonical!r} is not a canonical genre")
        for raw in raws:
            out.setdefault(raw, [])
            if canonical not in out[raw]:
                out[raw].append(canonical)
    return {raw: tuple(sorted(c, key=CANONICAL_GENRES.index)) for raw, c in out.items()}


MAPPINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "cmu": _invert(CMU_GROUPS),
    "netflix": _invert(NETFLIX_GROUPS),
    "tmdb": _invert(TMDB_GROUPS),
}


def map_genres(raw_genres: Iterable[str], source: str) -> list[str]:
    """Canonical genres of one movie, in taxonomy order, from its raw labels.

    ``source`` is ``"cmu"``, ``"netflix"``, ``"tmdb"`` or ``"identity"`` (labels kept as they are,
    for your own CSV). Unknown raw labels are dropped (see :func:`coverage`).
    """
    if source == "identity":
        return sorted({str(g).strip() for g in raw_genres if str(g).strip()})
    try:
        table = MAPPINGS[source]
    except KeyError:
        raise ValueError(f"No genre mapping for {source!r}; use one of {sorted(MAPPINGS)} "
                         f"or 'identity'.") from None
    found = {c for raw in raw_genres for c in table.get(raw, ())}
    return [g for g in CANONICAL_GENRES if g in found]


# --------------------------------------------------------------------------- your own CSV
# Common genre names of other sources (IMDb, TMDB, MovieLens, Kaggle files) -> canonical genres.
CSV_ALIASES: dict[str, tuple[str, ...]] = {
    "action": ("Action & Adventure",), "adventure": ("Action & Adventure",),
    "animation": ("Animation",), "animated": ("Animation",), "anime": ("Animation",), "cartoon": ("Animation",),
    "biography": ("Biography & History",), "biopic": ("Biography & History",), "history": ("Biography & History",),
    "historical": ("Biography & History",), "comedy": ("Comedy",), "crime": ("Crime",),
    "documentary": ("Documentary",), "docuseries": ("Documentary",), "drama": ("Drama",),
    "family": ("Family & Kids",), "kids": ("Family & Kids",), "children": ("Family & Kids",),
    "horror": ("Horror",), "independent": ("Independent",), "indie": ("Independent",),
    "lgbt": ("LGBTQ",), "lgbtq": ("LGBTQ",), "gay and lesbian": ("LGBTQ",),
    "music": ("Music & Musical",), "musical": ("Music & Musical",), "mystery": ("Mystery",),
    "reality": ("Reality & Talk",), "reality tv": ("Reality & Talk",), "talk show": ("Reality & Talk",),
    "game show": ("Reality & Talk",), "romance": ("Romance",), "romantic": ("Romance",),
    "sci fi": ("Sci-Fi & Fantasy",), "scifi": ("Sci-Fi & Fantasy",), "science fiction": ("Sci-Fi & Fantasy",),
    "fantasy": ("Sci-Fi & Fantasy",), "sport": ("Sports",), "teen": ("Teen & Coming of Age",),
    "coming of age": ("Teen & Coming of Age",), "thriller": ("Thriller",), "suspense": ("Thriller",),
    "war": ("War",), "western": ("Western",), "world cinema": ("World Cinema",), "foreign": ("World Cinema",),
    "international": ("World Cinema",), "film noir": ("Crime",), "noir": ("Crime",),
}
# Labels of form, format or release, not story: left out, as the CMU and Netflix tables do.
FORMAT_LABELS = ("short", "short film", "black and white", "silent", "silent film", "tv movie", "television movie",
                 "movie", "tv show", "tv series", "classic", "cult", "adult", "b movie", "film adaptation")


def normalise_genre(name: str) -> str:
    """Case, spacing, hyphens and '&' folded: 'Sci-Fi' -> 'sci fi', 'Action & Adventure' -> 'action and adventure'."""
    import re

    text = str(name).strip().lower().replace("&", " and ")
    text = re.sub(r"[^0-9a-z]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def _singular(key: str) -> str:
    if key.endswith("ies") and len(key) > 4:
        return key[:-3] + "y"
    if key.endswith("s") and not key.endswith("ss") and len(key) > 3:
        return key[:-1]
    return key


def _csv_table() -> tuple[dict[str, tuple[str, ...]], set[str]]:
    table: dict[str, tuple[str, ...]] = {}
    for source in ("cmu", "netflix", "tmdb"):
        for raw, canonical in MAPPINGS[source].items():
            table.setdefault(normalise_genre(raw), canonical)
    for canonical in CANONICAL_GENRES:
        table[normalise_genre(canonical)] = (canonical,)
    table.update(CSV_ALIASES)
    excluded = {normalise_genre(n) for n in (*FORMAT_LABELS, *CMU_UNMAPPED, *NETFLIX_UNMAPPED, *TMDB_UNMAPPED)}
    return table, excluded


_CSV_TABLE = _csv_table()


def map_csv_genre(name: str, override: dict | None = None) -> tuple[tuple[str, ...], str]:
    """Canonical genres of one raw name from someone else's CSV, and how they were found.

    ``how`` is ``"override"`` / ``"override-excluded"`` (the user's mapping file), ``"mapped"``
    (the course's tables, after folding case, spacing, hyphens and plurals), ``"excluded"``
    (a form or format label, left out) or ``"kept"`` (unknown: kept as its own genre).
    """
    if override:
        for key in (name, *[k for k in override if normalise_genre(k) == normalise_genre(name)]):
            if key in override:
                targets = tuple(override[key])
                return targets, ("override" if targets else "override-excluded")
    table, excluded = _CSV_TABLE
    key = normalise_genre(name)
    for candidate in dict.fromkeys((key, _singular(key), " ".join(_singular(w) for w in key.split()))):
        if candidate in excluded:
            return (), "excluded"
        if candidate in table:
            return table[candidate], "mapped"
    return (str(name).strip(),), "kept"


def genre_counts(genre_lists: Iterable[Iterable[str]]) -> Counter:
    """How many movies carry each genre."""
    return Counter(g for genres in genre_lists for g in set(genres))


def select_genres(genre_lists: Iterable[Iterable[str]], top_n: int | None = None,
                  min_count: int = 1) -> list[str]:
    """The genres the models will predict: at least ``min_count`` movies, at most ``top_n``.

    Ordered by frequency (most frequent first), ties by name, so the column order is stable.
    """
    counts = genre_counts(genre_lists)
    if top_n is not None and top_n < 1:
        raise ValueError(f"top_n must be at least 1, not {top_n}.")
    kept = sorted((g for g, n in counts.items() if n >= min_count), key=lambda g: (-counts[g], g))
    if len(kept) < min(2, top_n or 2):
        from utils.data.datasets import DatasetError

        ranked = sorted(counts, key=lambda g: (-counts[g], g))
        most = ", ".join(f"{g} {counts[g]:,}" for g in ranked[:5]) or "none"
        which = "No genre has" if not kept else f"Only one genre ({kept[0]}) has"
        raise DatasetError(
            f"{which} {min_count} titles or more (the most frequent genres: {most}): the data is too small to "
            f"learn genres from. The course needs at least two genres with {min_count} titles each: use a larger "
            f"file, or (your own CSV) map rare genre names onto broader ones with a mapping file "
            f"(README, \"Your own CSV\").")
    return kept[:top_n] if top_n is not None else kept


class _CsvLookup:
    """``raw in table`` for your own CSV's names: true when the course's taxonomy maps them."""

    def __contains__(self, raw) -> bool:
        return map_csv_genre(raw)[1] == "mapped"


def coverage(raw_genre_lists: Iterable[Iterable[str]], source: str) -> dict:
    """How much of the raw labelling the mapping keeps.

    Returns the share of raw genre occurrences that map to a canonical genre, the
    share of labelled movies that keep at least one genre, and the raw labels left
    unmapped with their counts (most frequent first).
    """
    if source == "csv":        # your own CSV: mapped by name folding (see map_csv_genre)
        table = _CsvLookup()
    else:
        table = MAPPINGS[source]
    occurrences = mapped = movies = kept_movies = 0
    unmapped: Counter = Counter()
    for raws in raw_genre_lists:
        raws = list(raws)
        if not raws:
            continue
        movies += 1
        hit = False
        for raw in raws:
            occurrences += 1
            if raw in table:
                mapped += 1
                hit = True
            else:
                unmapped[raw] += 1
        kept_movies += hit
    return {
        "movies_with_genres": movies,
        "movies_kept": kept_movies,
        "movie_coverage": kept_movies / movies if movies else 0.0,
        "occurrences": occurrences,
        "occurrences_mapped": mapped,
        "occurrence_coverage": mapped / occurrences if occurrences else 0.0,
        "unmapped": unmapped.most_common(),
    }


def main(argv=None) -> int:
    """``python -m utils.data.genres [--dataset cmu|netflix|tmdb]``: print the mapping's coverage."""
    import argparse

    from utils.data.datasets import load_raw_genres

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--dataset", default="cmu", choices=sorted(MAPPINGS))
    parser.add_argument("--show-unmapped", type=int, default=15)
    args = parser.parse_args(argv)
    lists = load_raw_genres(args.dataset)
    cov = coverage(lists, args.dataset)
    print(f"dataset: {args.dataset} ({len(lists):,} titles in the metadata)")
    print(f"canonical genres: {len(CANONICAL_GENRES)}; raw labels mapped: {len(MAPPINGS[args.dataset])}")
    print(f"genre occurrences mapped: {cov['occurrences_mapped']:,} / {cov['occurrences']:,} "
          f"= {cov['occurrence_coverage']:.1%}")
    print(f"movies keeping >= 1 genre: {cov['movies_kept']:,} / {cov['movies_with_genres']:,} "
          f"= {cov['movie_coverage']:.1%}")
    if args.show_unmapped:
        print("most frequent unmapped labels: " + ", ".join(
            f"{g} ({n:,})" for g, n in cov["unmapped"][: args.show_unmapped]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
