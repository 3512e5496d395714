"""Tests of lineage.hashing: digests are checked against hashlib and sha256sum, on
real files in tmp_path."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import exit_code_as_nobody
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lineage import hashing
from lineage.errors import InvalidInputError
from lineage.hashing import (
    FileDigest,
    StatKey,
    describe_file,
    hash_array,
    hash_bytes,
    hash_data,
    hash_file,
    hash_frame,
    hash_model,
    hash_text,
    hash_tree,
    row_digests,
    stat_key,
)

EMPTY = hashlib.sha256(b"").hexdigest()


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


class CountingCache:
    """A dict-backed DigestCache that counts its calls."""

    def __init__(self) -> None:
        self.data: dict[StatKey, tuple[str, int | None]] = {}
        self.gets = 0
        self.puts = 0

    def get(self, key: StatKey) -> tuple[str, int | None] | None:
        self.gets += 1
        return self.data.get(key)

    def put(self, key: StatKey, digest: str, lines: int | None) -> None:
        self.puts += 1
        self.data[key] = (digest, lines)


# ---------------------------------------------------------------------------
# bytes, text


def test_hash_bytes_and_text_known_values() -> None:
    assert hash_bytes(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hash_bytes(b"") == EMPTY
    assert hash_text("héllo") == sha("héllo".encode())
    assert hash_bytes(memoryview(b"abc")) == hash_bytes(b"abc")


# ---------------------------------------------------------------------------
# files


@pytest.mark.parametrize("size", [0, 1, hashing.CHUNK_SIZE - 1, hashing.CHUNK_SIZE, 3 * hashing.CHUNK_SIZE + 17])
def test_hash_file_matches_hashlib(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    p = tmp_path / "blob.bin"
    p.write_bytes(data)
    fd = hash_file(p)
    assert fd == FileDigest(sha(data), size, None)  # binary suffix: no line count by default
    assert hash_file(str(p), count_lines=True).lines == data.count(b"\n")


def test_text_suffixes_count_lines_by_default(tmp_path: Path) -> None:
    for name in ["a.csv", "a.TSV", "a.txt", "a.jsonl", "a.ndjson"]:
        p = tmp_path / name
        p.write_bytes(b"x\ny\nz")
        assert hash_file(p).lines == 2, name
    p = tmp_path / "a.parquet"
    p.write_bytes(b"x\ny\n")
    assert hash_file(p).lines is None
    assert hash_file(p, count_lines=True).lines == 2
    assert hash_file(tmp_path / "a.csv", count_lines=False).lines is None


@pytest.mark.parametrize("numpy_counter", [True, False], ids=["numpy", "thread"])
def test_large_text_file_counts_lines_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    numpy_counter: bool) -> None:
    # Big enough for the numpy (or, without numpy, threaded) counter, with newlines
    # straddling chunk borders.
    if not numpy_counter:
        monkeypatch.setattr(hashing, "_numpy_newline_counter", lambda *_: None)
    line = b"0.123456,abc,\xc3\xa9\n"
    data = line * ((20 * hashing.CHUNK_SIZE) // len(line)) + b"tail-without-newline"
    p = tmp_path / "big.csv"
    p.write_bytes(data)
    fd = hash_file(p)
    assert fd.digest == sha(data)
    assert fd.size == len(data)
    assert fd.lines == data.count(b"\n")


def test_progress_reports_each_chunk_up_to_total(tmp_path: Path) -> None:
    data = os.urandom(2 * hashing.CHUNK_SIZE + 5)
    p = tmp_path / "blob.bin"
    p.write_bytes(data)
    calls: list[tuple[int, int]] = []
    hash_file(p, progress=lambda done, total: calls.append((done, total)))
    assert calls == [
        (hashing.CHUNK_SIZE, len(data)),
        (2 * hashing.CHUNK_SIZE, len(data)),
        (len(data), len(data)),
    ]


def test_missing_file_is_a_one_line_invalid_input(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(InvalidInputError) as err:
        hash_file(missing)
    msg = str(err.value)
    assert str(missing) in msg and "\n" not in msg
    with pytest.raises(InvalidInputError, match="nope.csv"):
        stat_key(missing)


def test_directory_is_refused_by_hash_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="directory"):
        hash_file(tmp_path)


def test_unreadable_file_is_invalid_input(tmp_path: Path) -> None:
    p = tmp_path / "secret.csv"
    p.write_text("a\n")
    p.chmod(0)

    def check() -> int:
        try:
            hash_file(p)
        except InvalidInputError as exc:
            return 0 if "secret.csv" in str(exc) else 2
        except Exception:
            return 3
        return 4

    try:
        # (root reads everything, and CI runs as root: the check runs as `nobody`)
        assert exit_code_as_nobody(check) == 0, "an unreadable file did not give a one-line InvalidInputError"
    finally:
        p.chmod(0o644)


def test_stat_key_is_resolved_and_matches_stat(tmp_path: Path) -> None:
    p = tmp_path / "data.csv"
    p.write_text("a,b\n1,2\n")
    link = tmp_path / "link.csv"
    link.symlink_to(p)
    st_ = os.stat(p)
    expected = StatKey(os.path.realpath(p), st_.st_size, st_.st_mtime_ns, st_.st_ino)
    assert stat_key(p) == expected
    assert stat_key(link) == expected  # the link is keyed by its target
    assert os.path.isabs(stat_key(os.path.relpath(p)).path)


# ---------------------------------------------------------------------------
# the stat cache


def test_cache_hit_costs_a_stat_and_trusts_the_stat_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "train.csv"
    p.write_bytes(b"a,b\n1,2\n")
    cache = CountingCache()
    first = hash_file(p, cache=cache)
    assert first == FileDigest(sha(b"a,b\n1,2\n"), 8, 2)
    assert cache.puts == 1

    # Same size, same mtime, same inode, different bytes: the cache is trusted, so the
    # old digest comes back and the file is not read (open would fail the test).
    st_ = os.stat(p)
    with open(p, "r+b") as f:
        f.write(b"x")
    os.utime(p, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    with monkeypatch.context() as m:
        m.setattr(hashing, "open", _refuse_open, raising=False)
        again = hash_file(p, cache=cache)
    assert again == first
    assert cache.puts == 1
    # without the cache, the truth
    assert hash_file(p).digest == sha(b"x,b\n1,2\n")

    # A new mtime invalidates the entry: re-read, re-put.
    os.utime(p, ns=(st_.st_atime_ns, st_.st_mtime_ns + 1_000_000))
    fresh = hash_file(p, cache=cache)
    assert fresh.digest == sha(b"x,b\n1,2\n")
    assert cache.puts == 2


def _refuse_open(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError(f"hashing opened {args[0]!r} despite a cache hit")


def test_cache_key_includes_inode(tmp_path: Path) -> None:
    p = tmp_path / "d.bin"
    p.write_bytes(b"one")
    cache = CountingCache()
    hash_file(p, cache=cache)
    st_ = os.stat(p)
    # replace the file (new inode) with same-size content and the same mtime
    tmp = tmp_path / "d.new"
    tmp.write_bytes(b"two")
    os.utime(tmp, ns=(st_.st_atime_ns, st_.st_mtime_ns))
    keep = tmp_path / "keep"  # hold the old inode so it is not reused at once
    os.link(p, keep)
    os.replace(tmp, p)
    assert hash_file(p, cache=cache).digest == sha(b"two")
    assert cache.puts == 2


def test_cache_hit_without_lines_is_reread_when_lines_are_wanted(tmp_path: Path) -> None:
    p = tmp_path / "d.bin"
    p.write_bytes(b"1\n2\n")
    cache = CountingCache()
    assert hash_file(p, cache=cache).lines is None
    assert hash_file(p, cache=cache, count_lines=True).lines == 2
    assert cache.puts == 2
    # and now the cached entry has lines, so both kinds of request are hits
    assert hash_file(p, cache=cache, count_lines=True).lines == 2
    assert hash_file(p, cache=cache).lines is None
    assert cache.puts == 2


def test_cache_hit_completes_progress(tmp_path: Path) -> None:
    p = tmp_path / "d.bin"
    p.write_bytes(b"abc")
    cache = CountingCache()
    hash_file(p, cache=cache)
    calls: list[tuple[int, int]] = []
    hash_file(p, cache=cache, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(3, 3)]


def test_file_changing_while_hashed_is_not_cached(tmp_path: Path) -> None:
    p = tmp_path / "growing.bin"
    p.write_bytes(os.urandom(3 * hashing.CHUNK_SIZE))
    cache = CountingCache()

    grown = []

    def grow(done: int, total: int) -> None:
        if done == hashing.CHUNK_SIZE and not grown:  # after the first chunk, someone writes once
            grown.append(1)
            with open(p, "ab") as f:
                f.write(b"more")

    fd = hash_file(p, cache=cache, progress=grow)
    # read again once it settled: the digest is of the file as it now is, never a mix
    assert fd.digest == sha(p.read_bytes()) and fd.size == 3 * hashing.CHUNK_SIZE + 4
    assert cache.puts == 0  # its digest belongs to no stat key taken before the read
    assert hash_file(p, cache=cache).digest == sha(p.read_bytes())
    assert cache.puts == 1


# ---------------------------------------------------------------------------
# trees


def _make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "a.txt": b"alpha\n",
        "b/c.csv": b"x,y\n1,2\n",
        "b/d/e.bin": os.urandom(1000),
        "b/a.txt": b"",
        "name with space.txt": b"spaces\n",
        "a.b": b"dot sorts before slash",
        "Z.txt": b"upper case sorts first",
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "empty_dir").mkdir()
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (root / "b" / "d" / ".git").write_text("gitdir: elsewhere\n")  # a submodule's .git file
    return files


def _manifest_digest(files: dict[str, bytes]) -> str:
    lines = b"".join(
        f"{sha(data)}  {rel}\n".encode() for rel, data in sorted(files.items(), key=lambda kv: kv[0].encode())
    )
    return sha(lines)


def test_tree_digest_is_sha256sum_of_its_manifest(tmp_path: Path) -> None:
    root = tmp_path / "data"
    files = _make_tree(root)
    digest, manifest = hash_tree(root)
    expected = sorted(((rel, sha(data), len(data)) for rel, data in files.items()), key=lambda t: t[0].encode())
    assert manifest == expected
    assert digest == _manifest_digest(files)


@pytest.mark.skipif(shutil.which("sha256sum") is None or shutil.which("find") is None, reason="needs GNU coreutils")
def test_tree_digest_reproducible_with_coreutils(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _make_tree(root)
    cmd = (
        "find . -name .git -prune -o -type f -printf '%P\\0' "
        "| LC_ALL=C sort -z | xargs -0r sha256sum | sha256sum"
    )
    out = subprocess.run(["bash", "-c", cmd], cwd=root, capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == hash_tree(root)[0]


def test_empty_tree_has_stable_digest(tmp_path: Path) -> None:
    (tmp_path / "e1").mkdir()
    (tmp_path / "e2" / "sub").mkdir(parents=True)
    assert hash_tree(tmp_path / "e1") == (hashing.EMPTY_TREE_DIGEST, [])
    assert hash_tree(tmp_path / "e2") == (hashing.EMPTY_TREE_DIGEST, [])
    # an empty folder is not an empty file (whose digest is that of empty input)
    assert hashing.EMPTY_TREE_DIGEST != EMPTY


def test_tree_changes_with_content_and_names(tmp_path: Path) -> None:
    root = tmp_path / "t"
    _make_tree(root)
    base = hash_tree(root)[0]
    (root / "a.txt").write_bytes(b"alpha!\n")
    edited = hash_tree(root)[0]
    assert edited != base
    (root / "a.txt").rename(root / "a2.txt")
    assert hash_tree(root)[0] not in (base, edited)


def test_tree_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / "real.txt").write_bytes(b"real")
    (root / "sub").mkdir()
    (root / "sub" / "f.txt").write_bytes(b"f")
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"outside")
    (root / "in_link.txt").symlink_to(root / "real.txt")  # kept: target inside
    (root / "out_link.txt").symlink_to(outside)  # skipped: leads outside
    (root / "dir_link").symlink_to(root / "sub")  # skipped: a directory link
    (root / "loop").symlink_to(root)  # skipped: would loop
    (root / "dangling").symlink_to(root / "nothing")  # skipped
    _, manifest = hash_tree(root)
    assert [m[0] for m in manifest] == ["in_link.txt", "real.txt", "sub/f.txt"]
    assert manifest[0][1] == manifest[1][1] == sha(b"real")


def test_tree_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no such directory"):
        hash_tree(tmp_path / "missing")
    f = tmp_path / "f.txt"
    f.write_text("x")
    with pytest.raises(InvalidInputError, match="not a directory"):
        hash_tree(f)


def test_tree_uses_cache_and_reports_progress_over_the_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "t"
    files = _make_tree(root)
    cache = CountingCache()
    first = hash_tree(root, cache=cache)
    assert cache.puts == len(files)
    calls: list[tuple[int, int]] = []
    with monkeypatch.context() as m:
        m.setattr(hashing, "open", _refuse_open, raising=False)
        second = hash_tree(root, cache=cache, progress=lambda d, t: calls.append((d, t)))
    assert second == first
    total = sum(len(d) for d in files.values())
    assert calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


# ---------------------------------------------------------------------------
# arrays


def test_hash_array_format() -> None:
    a = np.arange(6, dtype="<i8").reshape(2, 3)
    assert hash_array(a) == sha(b"<i8|(2, 3)|" + a.tobytes())


def test_hash_array_is_dtype_and_shape_sensitive() -> None:
    a = np.arange(6, dtype=np.int64)
    digests = {
        hash_array(a),
        hash_array(a.astype(np.int32)),
        hash_array(a.astype(np.float64)),
        hash_array(a.reshape(2, 3)),
        hash_array(a.reshape(3, 2)),
        hash_array(a.astype(">i8")),  # same values, other byte order
    }
    assert len(digests) == 6


def test_hash_array_layout_does_not_matter() -> None:
    a = np.arange(12.0).reshape(3, 4)
    assert hash_array(a.T) == hash_array(np.ascontiguousarray(a.T))
    assert hash_array(np.asfortranarray(a)) == hash_array(a)
    assert hash_array(a[:, ::2]) == hash_array(a[:, ::2].copy())


def test_hash_array_other_dtypes() -> None:
    dates = np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[D]")
    assert hash_array(dates) == sha(b"<M8[D]|(2,)|" + dates.tobytes())
    assert hash_array(np.float64(1.5)) == sha(b"<f8|()|" + np.float64(1.5).tobytes())
    assert hash_array(np.array(["a", "bc"])) != hash_array(np.array(["a", "bd"]))
    rec1 = np.zeros(2, dtype=[("x", "<i8"), ("y", "<f8")])
    rec2 = np.zeros(2, dtype=[("x", "<f8"), ("y", "<i8")])
    assert hash_array(rec1) != hash_array(rec2)  # same '|V16', different layout


def test_object_arrays_hash_values_not_pointers() -> None:
    a = np.array(["x" * 3, {"k": [1, 2]}, None], dtype=object)
    b = np.array(["".join(["x", "x", "x"]), {"k": [1, 2]}, None], dtype=object)
    assert hash_array(a) == hash_array(b)
    c = np.array(["xxx", {"k": [1, 3]}, None], dtype=object)
    assert hash_array(a) != hash_array(c)


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(np.int64, hnp.array_shapes(max_dims=2, max_side=4), elements=st.integers(-3, 3)),
    hnp.arrays(np.int64, hnp.array_shapes(max_dims=2, max_side=4), elements=st.integers(-3, 3)),
)
def test_hash_array_equal_iff_arrays_equal(a: np.ndarray, b: np.ndarray) -> None:
    same = a.shape == b.shape and np.array_equal(a, b)
    assert (hash_array(a) == hash_array(b)) == same


# ---------------------------------------------------------------------------
# frames

def _pd() -> Any:
    # per test, so the rest of the module runs where pandas is not installed
    return pytest.importorskip("pandas")


def _frame() -> Any:
    pd = _pd()
    return pd.DataFrame(
        {
            "age": [31, 45, 27],
            "income": [52.5, 61.0, float("nan")],
            "city": ["Oslo", None, "Lund"],
            "when": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01"]),
        }
    )


def test_equal_frames_hash_equal() -> None:
    assert hash_frame(_frame()) == hash_frame(_frame())
    assert hash_frame(_frame()) == hash_frame(_frame().copy())


def test_frame_digest_is_sensitive() -> None:
    base = _frame()
    variants = {"base": base}
    v = base.copy()
    v.loc[1, "age"] = 46
    variants["value"] = v
    v = base.copy()
    v.loc[0, "city"] = "Bergen"
    variants["string value"] = v
    variants["column order"] = base[["income", "age", "city", "when"]]
    variants["column name"] = base.rename(columns={"age": "Age"})
    variants["dtype"] = base.astype({"age": "float64"})
    variants["row order"] = base.iloc[[1, 0, 2]].reset_index(drop=True)
    variants["index"] = base.set_axis(["a", "b", "c"], axis=0)
    variants["fewer rows"] = base.iloc[:2]
    variants["category"] = base.astype({"city": "category"})
    digests = {name: hash_frame(df) for name, df in variants.items()}
    assert len(set(digests.values())) == len(digests), digests


def test_default_index_is_ignored_other_indexes_are_not() -> None:
    pd = _pd()
    df = pd.DataFrame({"x": [1, 2, 3, 4]})
    filtered = df[df.x % 2 == 0]  # index [1, 3]: says which rows survived
    fresh = pd.DataFrame({"x": [2, 4]})
    assert hash_frame(filtered) != hash_frame(fresh)
    assert hash_frame(filtered.reset_index(drop=True)) == hash_frame(fresh)


def test_frame_with_duplicate_column_names() -> None:
    pd = _pd()
    a = pd.DataFrame([[1, 2], [3, 4]], columns=["x", "x"])
    b = pd.DataFrame([[1, 2], [3, 5]], columns=["x", "x"])
    assert hash_frame(a) != hash_frame(b)


#: ``hash_frame`` of `_text_frame`, computed under pandas 2.3.3 (where its text
#: columns are ``object``) with ``hash_data(_text_frame())[0]`` at lineage 1d58ea0,
#: before string dtypes were normalised: the digest every store written under pandas 2
#: holds for it. pandas 3 (``str`` columns) must give the same; if either pandas
#: version drifts, datasets already recorded would look changed.
PANDAS2_TEXT_FRAME = "602791dd932993f48c426f5b1c92c134c222a8706038c55c9341c27b32d3850f"


def _text_frame(text_dtype: Any = None) -> Any:
    pd = _pd()
    df = pd.DataFrame({"name": ["ann", "bob", None], "age": [31, 42, 57], "city": ["oslo", np.nan, "rome"]})
    return df if text_dtype is None else df.astype({"name": text_dtype, "city": text_dtype})


def test_text_frame_digest_is_pandas_2s() -> None:
    assert hash_frame(_text_frame()) == PANDAS2_TEXT_FRAME


#: the same frame with its text columns asked for as ``string[python]``, under pandas
#: 2.3.3 and 3.1.1 alike with the code before `_dtype_name` (``str(dtype)`` is
#: ``string`` in both): a dtype asked for by name keeps its own digest
PANDAS2_STRING_FRAME = "0c7d6d659f4a810931ed2cba0353b614e7c592cca731c048b29dec7d32e265a7"


@pytest.mark.parametrize(("text_dtype", "digest"), [(object, PANDAS2_TEXT_FRAME), ("str", PANDAS2_TEXT_FRAME),
                                                    ("string[python]", PANDAS2_STRING_FRAME)])
def test_text_columns_keep_the_digest_pandas_2_gave(text_dtype: Any, digest: str) -> None:
    pd = _pd()
    df = _text_frame(text_dtype)
    assert hash_frame(df) == digest
    # missing values: None, NaN and pd.NA are one missing value
    for missing in (None, np.nan, pd.NA):
        other = df.copy()
        other.loc[0, "city"] = missing
        same = df.copy()
        same.loc[0, "city"] = None
        assert hash_frame(other) == hash_frame(same) != digest


def test_text_series_digest_is_pandas_2s() -> None:
    pd = _pd()
    # computed as PANDAS2_TEXT_FRAME, with hash_data(pd.Series(["a", None], name="s"))[0]
    for dtype in (object, "str"):
        digest, _ = hash_data(pd.Series(["a", None], name="s", dtype=dtype))
        assert digest == "7b7bb42b17b41116362f75fa3bffc0ff242bac657465825effecbd772a10b97f"
    # (and as PANDAS2_STRING_FRAME, with dtype="string[python]")
    digest, _ = hash_data(pd.Series(["a", None], name="s", dtype="string[python]"))
    assert digest == "13eadfe120e8b1da42ac9ff87764bd8bd62a4cbe0b37952afe701ba42a5258fa"


# ---------------------------------------------------------------------------
# hash_data and row_digests


def test_hash_data_ndarray() -> None:
    x = np.zeros((5, 3), dtype=np.float32)
    digest, attrs = hash_data(x)
    assert digest == hash_array(x)
    assert attrs == {"format": "ndarray", "rows": 5, "columns": 3, "shape": [5, 3], "dtype": "<f4"}


def test_hash_data_dataframe() -> None:
    df = _frame()
    digest, attrs = hash_data(df)
    assert digest == hash_frame(df)
    assert attrs["format"] == "dataframe"
    assert attrs["rows"] == 3
    assert attrs["columns"] == ["age", "income", "city", "when"]
    assert attrs["shape"] == [3, 4]


def test_hash_data_list_and_errors() -> None:
    digest, attrs = hash_data([[1, 2], [3, 4], [5, 6]])
    assert attrs == {"format": "list", "rows": 3, "columns": 2, "shape": [3, 2]}
    assert digest == hash_text("[[1,2],[3,4],[5,6]]")
    assert hash_data([[1, 2]])[0] != hash_data([[2, 1]])[0]
    _, attrs = hash_data([{"a": 1, "b": 2}])
    assert attrs["columns"] == ["a", "b"]
    with pytest.raises(InvalidInputError, match="cannot hash"):
        hash_data(object())


def test_row_digests_of_arrays() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]])
    d = row_digests(x)
    assert len(d) == 3
    assert d[0] == d[2] != d[1]
    assert d[1] == hash_array(x[1])  # one input can be looked up alone
    assert row_digests(np.array([5, 6, 5])) == [hash_array(np.int64(5)), hash_array(np.int64(6)), hash_array(np.int64(5))]
    assert row_digests(np.empty((0, 3))) == []
    assert row_digests(np.asfortranarray(x)) == d


def test_row_digests_of_sparse_matrices() -> None:
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(0)
    x = rng.random((6, 5)) * (rng.random((6, 5)) > 0.5)
    d = row_digests(x)
    # narrow: each row is its dense row, whatever the format, index width or stored zeros
    for m in (sp.csr_matrix(x), sp.csc_matrix(x), sp.coo_array(x), sp.csr_array(x)):
        assert row_digests(m) == d
    padded = sp.csr_matrix(x)
    padded.data[padded.data > 0.9] = 0.0  # explicit zeros stored
    assert row_digests(padded) == row_digests(padded.toarray())
    # wide: by the non-zero entries, the same in every format, row by row
    wide = sp.random(4, hashing.SPARSE_DENSE_WIDTH + 1, density=0.01, format="csr", random_state=1)
    w = row_digests(wide)
    assert len(set(w)) == 4 and row_digests(wide.tocoo()) == w and row_digests(wide[2]) == [w[2]]
    assert w[0] != hash_array(wide[0].toarray()[0])  # (its own form, told apart by its prefix)
    with pytest.raises(InvalidInputError, match="1-D sparse"):
        row_digests(sp.coo_array(np.array([1.0, 0.0, 2.0])))


def test_row_digests_of_frames_and_lists() -> None:
    pd = _pd()
    x = np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]])
    assert row_digests(pd.DataFrame(x, columns=["a", "b"])) == row_digests(x)
    mixed = pd.DataFrame({"a": [1, 2, 1], "b": ["u", "v", "u"]})
    records = [{"a": 1, "b": "u"}, {"a": 2, "b": "v"}, {"a": 1, "b": "u"}]
    assert row_digests(mixed) == row_digests(records)
    lists = row_digests([[1, 2], [3, 4], [1, 2]])
    assert lists[0] == lists[2] != lists[1]
    assert row_digests([1, 2, 1])[0] == row_digests([1, 2, 1])[2]
    with pytest.raises(InvalidInputError):
        row_digests("not rows")


def test_row_digests_of_an_array_match_hashing_each_row_alone() -> None:
    # the vectorised path must agree with hashing one row, so one input can be looked up
    # (its speed is measured in benchmarks/bench_tracking.py, not asserted here)
    x = np.random.default_rng(0).random((5_000, 10))
    d = row_digests(x)
    assert len(d) == 5_000 and all(d[i] == hash_array(x[i]) for i in (0, 123, 4_999))


# ---------------------------------------------------------------------------
# describe_file


def _describe(tmp_path: Path, name: str, data: bytes) -> dict[str, Any]:
    p = tmp_path / name
    p.write_bytes(data)
    return describe_file(p, hash_file(p))


def test_describe_csv(tmp_path: Path) -> None:
    data = b'id,"name, full",score\n1,"a, b",0.5\n2,c,0.7\n'
    attrs = _describe(tmp_path, "train.csv", data)
    assert attrs == {
        "path": (tmp_path / "train.csv").as_posix(),
        "size": len(data),
        "format": "csv",
        "columns": ["id", "name, full", "score"],
        "rows": 2,
    }


def test_a_csv_header_without_commas_is_split_at_its_own_delimiter(tmp_path: Path) -> None:
    """A spreadsheet in a decimal-comma locale writes ``;``: one column named
    ``id;val`` matched no column in feature lineage."""
    assert _describe(tmp_path, "eu.csv", b"id;amount;sex\n1;2,5;f\n")["columns"] == ["id", "amount", "sex"]
    assert _describe(tmp_path, "p.csv", b"id|v\n1|2\n")["columns"] == ["id", "v"]
    assert _describe(tmp_path, "one.csv", b"only\n1\n")["columns"] == ["only"]
    assert _describe(tmp_path, "mixed.csv", b'id,"a;b"\n1,2\n')["columns"] == ["id", "a;b"]


def test_describe_csv_edge_cases(tmp_path: Path) -> None:
    assert _describe(tmp_path, "a.csv", b"x,y\n1,2\n3,4")["rows"] == 2  # no final newline
    assert _describe(tmp_path, "b.csv", b"x,y")["rows"] == 0  # header only
    assert _describe(tmp_path, "c.csv", b"") == {"path": (tmp_path / "c.csv").as_posix(), "size": 0, "format": "csv", "rows": 0, "columns": []}
    bom = _describe(tmp_path, "d.csv", "\ufeffé,b\r\n1,2\r\n".encode("utf-8"))
    assert bom["columns"] == ["é", "b"] and bom["rows"] == 1
    tsv = _describe(tmp_path, "e.TSV", b"a\tb,c\n1\t2\n")
    assert tsv["format"] == "tsv" and tsv["columns"] == ["a", "b,c"] and tsv["rows"] == 1


def test_a_header_the_csv_module_refuses_leaves_out_only_the_columns(tmp_path: Path) -> None:
    described = _describe(tmp_path, "cr.csv", b"a\rb,c\n1,2\n")
    assert "columns" not in described and described["rows"] == 1 and described["format"] == "csv"


def test_describe_other_formats(tmp_path: Path) -> None:
    assert _describe(tmp_path, "m.Parquet", b"PAR1")["format"] == "parquet"
    attrs = _describe(tmp_path, "README", b"hello")
    assert attrs == {"path": (tmp_path / "README").as_posix(), "size": 5, "format": "file"}


def test_describe_reads_only_the_first_line_and_last_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "big.csv"
    p.write_bytes(b"a,b\n" + b"1,2\n" * 500_000)
    fd = hash_file(p)
    read = 0
    real_open = open

    class Counting:
        def __init__(self, f: Any) -> None:
            self.f = f

        def __enter__(self) -> Counting:
            return self

        def __exit__(self, *exc: Any) -> None:
            self.f.close()

        def __getattr__(self, name: str) -> Any:
            attr = getattr(self.f, name)
            if name in ("read", "readline"):
                def counted(*a: Any) -> Any:
                    nonlocal read
                    out = attr(*a)
                    read += len(out)
                    return out
                return counted
            return attr

    monkeypatch.setattr(hashing, "open", lambda *a, **k: Counting(real_open(*a, **k)), raising=False)
    attrs = describe_file(p, fd)
    assert attrs["rows"] == 500_000
    assert read <= 16


# ---------------------------------------------------------------------------
# models


def test_hash_model_round_trips() -> None:
    model = {"coef": np.array([0.5, -1.0]), "classes": ["no", "yes"]}
    digest, blob = hash_model(model)
    assert digest == sha(blob)
    assert blob == pickle.dumps(model, protocol=5)
    back = pickle.loads(blob)
    assert np.array_equal(back["coef"], model["coef"])
    assert hash_model(model)[0] == digest


def test_hash_model_unpicklable_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="cannot serialize"):
        hash_model(lambda x: x)


def test_importing_hashing_and_capture_is_cheap() -> None:
    # Import the two modules on their own (a bare package object stands in for
    # lineage/__init__, whose imports are not these modules' doing) and list what
    # heavy modules they pulled in.
    import lineage

    script = (
        "import sys, types, importlib\n"
        f"pkg = types.ModuleType('lineage'); pkg.__path__ = {list(lineage.__path__)!r}\n"
        "sys.modules['lineage'] = pkg\n"
        "before = set(sys.modules)\n"
        "importlib.import_module('lineage.hashing'); importlib.import_module('lineage.capture')\n"
        "heavy = ('numpy', 'pandas', 'rich', 'subprocess', 'sklearn', 'queue', 'platform', 'socket')\n"
        "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_read_errors_become_one_line_invalid_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Permission errors cannot be provoked as root, so the open itself is made to fail.
    p = tmp_path / "locked.csv"
    p.write_text("a\n")

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(args[0]))

    monkeypatch.setattr(hashing, "open", denied, raising=False)
    with pytest.raises(InvalidInputError) as err:
        hash_file(p)
    assert str(err.value) == f"cannot read {p}: permission denied"


# ---------------------------------------------------------------------------
# files that change while hashed, special files


def _finishes(fn: Any, timeout: float = 10.0) -> Any:
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it blocks."""
    import threading

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "hashing blocked on a special file"
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_at_once_with_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="is a FIFO") as err:
        _finishes(lambda: hash_file(fifo))
    assert "\n" not in str(err.value) and str(fifo) in str(err.value)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_refused_at_once() -> None:
    with pytest.raises(InvalidInputError, match="/dev/zero is a character device"):
        _finishes(lambda: hash_file("/dev/zero"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_swapped_in_after_the_stat_is_refused_without_blocking(tmp_path: Path) -> None:
    # the open itself is non-blocking, and the fstat after it checks the kind again
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="is a FIFO"):
        _finishes(lambda: hashing._read_once(fifo, None, False, 0, 0, 0))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_special_files_inside_a_tree_are_skipped_without_blocking(tmp_path: Path) -> None:
    root = tmp_path / "d"
    root.mkdir()
    (root / "a.txt").write_bytes(b"a")
    os.mkfifo(root / "pipe")
    _digest, manifest = _finishes(lambda: hash_tree(root))
    assert [m[0] for m in manifest] == ["a.txt"]


def test_a_file_rewritten_in_place_by_another_thread_is_read_again(tmp_path: Path) -> None:
    # Same size, same inode, and written within the same clock tick as the file's
    # creation: only the re-read of a recently changed file catches it.
    import threading

    p = tmp_path / "data.bin"
    old, new = b"A" * (4 * hashing.CHUNK_SIZE), b"B" * (4 * hashing.CHUNK_SIZE)
    p.write_bytes(old)
    go, written = threading.Event(), threading.Event()

    def writer() -> None:
        go.wait()
        with open(p, "r+b") as f:  # in place: no new inode, no new size
            f.write(new)
        written.set()

    t = threading.Thread(target=writer)
    t.start()

    def progress(done: int, total: int) -> None:
        if not go.is_set():  # after the first chunk of the first read
            go.set()
            written.wait()

    fd = hash_file(p, progress=progress)
    t.join()
    assert fd.digest == sha(new)  # never the mix of one A chunk and three B chunks
    mixed = sha(old[: hashing.CHUNK_SIZE] + new[hashing.CHUNK_SIZE :])
    assert fd.digest != mixed


def test_a_file_that_never_settles_is_refused_with_one_line(tmp_path: Path) -> None:
    p = tmp_path / "app.log"
    p.write_bytes(b"x" * (2 * hashing.CHUNK_SIZE))
    reads = []

    def append(done: int, total: int) -> None:  # a writer that appends on every read
        reads.append(done)
        with open(p, "ab") as f:
            f.write(b"more\n")

    with pytest.raises(InvalidInputError, match="changed while it was being hashed") as err:
        hash_file(p, progress=append)
    assert str(p) in str(err.value) and "\n" not in str(err.value)
    assert len(reads) >= hashing.CHANGE_RETRIES  # bounded: tried, then refused


def test_an_empty_directory_and_an_empty_file_are_different_datasets(tmp_path: Path) -> None:
    import lineage

    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "empty.csv").write_bytes(b"")
    lg = lineage.open(tmp_path / ".lineage" / "lineage.db")
    try:
        d = lg.log_dataset(tmp_path / "empty_dir", name="d")
        f = lg.log_dataset(tmp_path / "empty.csv", name="f")
        assert d.id != f.id
        assert d.attrs["format"] == "directory" and d.attrs["files"] == 0
    finally:
        lg.close()


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_cli_add_refuses_a_device_with_one_line_and_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from lineage.cli import cli

    monkeypatch.chdir(tmp_path)
    result = _finishes(lambda: CliRunner().invoke(cli, ["--db", str(tmp_path / "s" / "lineage.db"), "add", "/dev/zero"]))
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "character device" in lines[0], result.output


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_logging_a_fifo_as_data_or_artifact_is_refused_at_once(tmp_path: Path) -> None:
    import lineage

    fifo = tmp_path / "stream"
    os.mkfifo(fifo)
    lg = lineage.open(tmp_path / ".lineage" / "lineage.db")
    try:
        with pytest.raises(InvalidInputError, match="FIFO"):
            _finishes(lambda: lg.log_dataset(fifo))
        with lg.start_run("r") as run:
            with pytest.raises(InvalidInputError, match="FIFO"):
                _finishes(lambda: run.log_input(str(fifo)))
            with pytest.raises(InvalidInputError, match="FIFO"):
                _finishes(lambda: run.log_artifact(fifo))
        assert lg.nodes(kind="dataset") == [] and lg.nodes(kind="artifact") == []
    finally:
        lg.close()


# ---------------------------------------------------------------------------
# CSV rows: a newline inside a quoted field breaks no record

_COUNTERS = ["numpy", "numpy<2", "thread", "inline"]


def _use_counter(monkeypatch: pytest.MonkeyPatch, which: str, chunk: int) -> None:
    # A tiny chunk puts quotes and newlines on every side of chunk borders; the
    # threshold at 0 sends even a small file to the numpy or threaded counter.
    monkeypatch.setattr(hashing, "CHUNK_SIZE", chunk)
    if which == "inline":
        return
    monkeypatch.setattr(hashing, "_THREADED_COUNT_MIN", 0)
    if which == "numpy<2":  # no np.bitwise_count: bits are counted unpacked
        monkeypatch.delattr(np, "bitwise_count", raising=False)
    if which == "thread":
        monkeypatch.setattr(hashing, "_numpy_newline_counter", lambda *_: None)
        monkeypatch.setattr(hashing, "_CPUS", 2)


def _rows(path: Path) -> int:
    fd = hash_file(path)
    return int(hashing.describe_file(path, fd)["rows"])


@pytest.mark.parametrize("which", _COUNTERS)
@pytest.mark.parametrize("chunk", [1, 3, 1 << 20])
def test_csv_rows_ignore_newlines_inside_quotes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                which: str, chunk: int) -> None:
    _use_counter(monkeypatch, which, chunk)
    p = tmp_path / "t.csv"
    cases = {
        b'id,text\n1,"a\nb"\n2,c\n': 2,
        b'id,text\n1,"a\nb"\n2,c': 2,  # no trailing newline
        b'id,text\r\n1,"a\r\nb"\r\n2,c\r\n': 2,  # CRLF, inside the field too
        b'id,text\n1,"say ""hi""\nthere"\n2,"x"\n': 2,  # escaped quotes keep the parity
        b'id,text\n1,"""\n"""\n': 1,
        b'id\n': 0,
        b'id': 0,
        b'id\n1\n\n': 2,  # a blank line is a record to csv.reader too
    }
    for data, rows in cases.items():
        p.write_bytes(data)
        assert _rows(p) == rows, data
    # A .tsv (unquoted by most tools) and a .txt count every newline, as before.
    for name in ("t.tsv", "t.txt"):
        q = tmp_path / name
        q.write_bytes(b'id\ttext\n1\t"a\nb"\n')
        assert hash_file(q).lines == 3, name


# No bare "\r": csv.writer leaves it unquoted when the terminator is "\n", and
# csv.reader then ends a record there (old Mac line ends, which rows do not count).
_FIELD = st.lists(st.sampled_from(["a", "b", ",", '"', '""', "\n", "\r\n", " ", "é"]), max_size=8).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.lists(_FIELD, min_size=1, max_size=4), min_size=1, max_size=12),
    terminator=st.sampled_from(["\r\n", "\n"]),
    trailing=st.booleans(),
    which=st.sampled_from(_COUNTERS),
    chunk=st.integers(1, 64),
)
def test_csv_rows_match_csv_reader(tmp_path: Path, rows: list[list[str]], terminator: str, trailing: bool,
                                   which: str, chunk: int) -> None:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator=terminator).writerows(rows)
    text = buf.getvalue()
    if not trailing:
        text = text[: -len(terminator)]
    p = tmp_path / "p.csv"
    p.write_bytes(text.encode("utf-8"))
    expected = max(len(list(csv.reader(io.StringIO(text, newline="")))) - 1, 0)
    with pytest.MonkeyPatch.context() as mp:
        _use_counter(mp, which, chunk)
        assert _rows(p) == expected
    assert _rows(p) == expected  # and with the real chunk size


# Objects whose text is their address ("<P object at 0x7f…>"): the same data gave a new
# digest in every process and for every re-created frame, so each re-run of a notebook
# cell made a new "version" of the dataset. A module of its own, so that a second
# process can import the class by the same name.
_OBJECTS_MODULE = '''
class P:
    def __init__(self, v, tags=()):
        self.v = v
        self.tags = set(tags)


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a, b):
        self.a, self.b = a, b


def digests():
    import numpy as np
    import pandas as pd

    from lineage.hashing import hash_data, row_digests

    frame = pd.DataFrame({"o": [P(1, ["x", "y"]), P(2)], "s": ["a", "b"], "n": [1.5, 2.5]})
    return [hash_data(frame)[0], hash_data(pd.Series([Slotted(1, P(3)), None]))[0],
            hash_data(np.array([P(1), P(2)], dtype=object))[0], hash_data([[P(1), {P(2)}]])[0],
            *row_digests(frame)]
'''


def test_objects_in_data_hash_by_value_in_every_process(tmp_path: Path) -> None:
    (tmp_path / "objs_mod.py").write_text(_OBJECTS_MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        import objs_mod

        here = objs_mod.digests()
        assert here == objs_mod.digests()  # re-created values: the same digests
        code = "import objs_mod; print(' '.join(objs_mod.digests()))"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]), "PYTHONHASHSEED": "random"}
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            assert out.stdout.split() == here
        # by value: another value, another digest
        import pandas as pd

        assert hash_data(pd.Series([objs_mod.P(1)]))[0] != hash_data(pd.Series([objs_mod.P(2)]))[0]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("objs_mod", None)


def test_the_digests_of_data_without_such_objects_are_unchanged() -> None:
    """What a store already holds must still be found: frames of numbers, strings
    (even strings that say " at 0x") and sets keep the digests they always had."""
    import pandas as pd

    # (digests the code before objects were hashed by state gave)
    assert hash_data(pd.DataFrame({"n": [1.5, 2.5], "i": [1, 2]}))[0] == \
        "e23103e6be0e6220ff6457a6f9f7ba2c9736649057723a2640c7301d7c68c634"
    assert hash_data(pd.DataFrame({"s": ["<x at 0x1>", "b"]}, dtype=object))[0] == \
        "22e21ddbb386ff4db55341d286b77d67f042e91b86c1362402e28a5633cabf24"
    assert hash_data(np.array([["a", 1], ["b", None]], dtype=object))[0] == \
        "e90c69a48f1adceafaf7b7cc019b2785bcb407137307d6ca3d1a3b30d64f77e6"
    assert hash_data([{"a", "b"}])[0] == hashlib.sha256(b'[["a","b"]]').hexdigest()


def test_sparse_matrices_hash_by_value_whatever_their_format() -> None:
    import scipy.sparse as sp

    dense = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, 0.0]])
    csr = sp.csr_matrix(dense)
    digest, attrs = hash_data(csr)
    assert attrs == {"format": "sparse", "rows": 2, "columns": 3, "shape": [2, 3], "dtype": "<f8",
                     "sparse_format": "csr", "nnz": 2}
    # one matrix, one digest: csc, coo, a sparse array, unsorted indices, duplicate
    # entries and stored zeros are only ways of writing it down
    unsorted = sp.csr_matrix((np.array([1.5, 0.0, 2.0]), np.array([1, 0, 0]), np.array([0, 2, 3])), shape=(2, 3))
    dup = sp.coo_matrix((np.array([1.0, 0.5, 2.0]), (np.array([0, 0, 1]), np.array([1, 1, 0]))), shape=(2, 3))
    for same in (sp.csc_matrix(dense), sp.coo_array(dense), unsorted, dup):
        assert hash_data(same)[0] == digest
    assert not unsorted.has_sorted_indices and dup.nnz == 3  # the caller's matrices are left as they were
    assert hash_data(sp.csr_matrix(dense * 2))[0] != digest
    assert hash_data(sp.csr_matrix(dense.astype(np.float32)))[0] != digest
    assert hash_data(sp.csr_matrix(dense.T))[0] != digest
    assert hash_data(dense)[0] != digest  # dense and sparse are told apart
