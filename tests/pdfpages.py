"""Measure a PDF that headless Chromium printed: pages, where the ink is on each page,
and which tagged element (heading, paragraph, figure) each page ends with.

No PDF library is installed here, so this reads Chromium's (Skia's) output directly:
uncompressed object table, one FlateDecode content stream per page, and a small
interpreter for the operators that put marks on a page (paths, rectangles, text,
images) under the current transformation matrix. White fills (the page background)
are not ink. Good enough for layout checks; not a general PDF reader.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

Matrix = tuple[float, float, float, float, float, float]
IDENTITY: Matrix = (1, 0, 0, 1, 0, 0)
MM = 72 / 25.4


def _mul(a: Matrix, b: Matrix) -> Matrix:
    """a then b (PDF's row-vector convention: [x y 1] · a · b)."""
    return (a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3],
            a[2] * b[0] + a[3] * b[2], a[2] * b[1] + a[3] * b[3],
            a[4] * b[0] + a[5] * b[2] + b[4], a[4] * b[1] + a[5] * b[3] + b[5])


def _apply(m: Matrix, x: float, y: float) -> tuple[float, float]:
    return x * m[0] + y * m[2] + m[4], x * m[1] + y * m[3] + m[5]


@dataclass
class Page:
    width: float
    height: float
    marks: list[tuple[float, float, str]] = field(default_factory=list)  # (y_low, y_high, tag) in points, y up
    tags: list[str] = field(default_factory=list)  # tags of marked content with ink, in drawing order
    text_sizes: list[float] = field(default_factory=list)  # rendered text heights in points
    texts: list[tuple[float, float]] = field(default_factory=list)  # (baseline y, size in points) of each text shown

    def extent(self) -> tuple[float, float]:
        """(lowest, highest) y of any ink, in points from the bottom."""
        if not self.marks:
            return (0.0, 0.0)
        return min(m[0] for m in self.marks), max(m[1] for m in self.marks)

    def blank_fraction(self, top_mm: float = 12, bottom_mm: float = 14) -> float:
        """Share of the printable height (between the margins) with no ink below or above
        the marks: 1.0 for an empty page."""
        lo, hi = self.extent()
        usable = self.height - (top_mm + bottom_mm) * MM
        if not self.marks:
            return 1.0
        return max(0.0, 1 - (hi - lo) / usable)

    def last_tag(self) -> str | None:
        return self.tags[-1] if self.tags else None

    def ends_with_heading(self, heading_pt: float = 10.4) -> bool:
        """True when the lowest line of text on the page is set in heading sizes (at
        least ``heading_pt``; body text is 9 pt, tables 8.5 pt): a heading left alone
        at the bottom, its content on the next page. (Chromium tags the text of
        headings as NonStruct, so the size tells headings apart, not the tag.)"""
        if not self.texts:
            return False
        low = min(y for y, _ in self.texts)
        bottom = [size for y, size in self.texts if y <= low + 2]
        return all(size >= heading_pt for size in bottom)


_TOKEN = re.compile(rb"/[^\s/\[\]<>()]+|\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f\s]*>|\[|\]|<<|>>|[^\s/\[\]<>()]+")


def _is_white(color: tuple[float, ...]) -> bool:
    return len(color) in (1, 3) and all(c > 0.97 for c in color)


def read(data: bytes) -> list[Page]:
    """The pages of a PDF Chromium printed, in order, with their marks."""
    objs = {int(m.group(1)): m.group(2) for m in re.finditer(rb"(\d+) 0 obj(.*?)endobj", data, re.S)}
    kids_order: list[int] = []
    for body in objs.values():  # the page tree's Kids give the order
        if re.search(rb"/Type\s*/Pages\b", body):
            kids = re.search(rb"/Kids\s*\[([^\]]*)\]", body)
            if kids:
                kids_order += [int(k) for k in re.findall(rb"(\d+) 0 R", kids.group(1))]
    pages_ids = [k for k in kids_order if re.search(rb"/Type\s*/Page\b", objs.get(k, b""))] or sorted(
        k for k, v in objs.items() if re.search(rb"/Type\s*/Page\b", v))
    out = []
    for pid in pages_ids:
        body = objs[pid]
        box = [float(x) for x in re.search(rb"/MediaBox\s*\[([^\]]*)\]", body).group(1).split()]
        page = Page(box[2] - box[0], box[3] - box[1])
        contents = re.search(rb"/Contents\s+(\d+) 0 R", body)
        if contents:
            raw = _stream(objs, int(contents.group(1)))
            if raw is not None:
                _interpret(zlib.decompress(raw), page)
        out.append(page)
    return out


def _stream(objs: dict[int, bytes], num: int) -> bytes | None:
    """The raw bytes of object ``num``'s stream, cut by its /Length (binary data may
    hold the word endstream)."""
    body = objs.get(num, b"")
    start = re.search(rb"stream\r?\n", body)
    if start is None:
        return None
    length = re.search(rb"/Length\s+(\d+)(\s+0\s+R)?", body[:start.start()])
    if length is None:
        return None
    n = int(length.group(1))
    if length.group(2):  # an indirect length
        n = int(re.search(rb"\d+", objs[n]).group(0))
    return body[start.end():start.end() + n]


def _interpret(content: bytes, page: Page) -> None:
    ctm: Matrix = IDENTITY
    stack: list[tuple[Matrix, tuple[float, ...], tuple[float, ...]]] = []
    fill: tuple[float, ...] = (0.0,)
    stroke: tuple[float, ...] = (0.0,)
    path: list[tuple[float, float]] = []
    tm: Matrix = IDENTITY
    tlm: Matrix = IDENTITY
    font_size = 0.0
    tags: list[str] = []
    operands: list[bytes] = []

    def mark(points: list[tuple[float, float]], painted_with: tuple[float, ...]) -> None:
        if not points or _is_white(painted_with):
            return
        ys = [_apply(ctm, x, y)[1] for x, y in points]
        tag = tags[-1] if tags else ""
        page.marks.append((min(ys), max(ys), tag))
        if tag and (not page.tags or page.tags[-1] != tag):
            page.tags.append(tag)

    def nums(n: int) -> list[float]:
        return [float(x) for x in operands[-n:]]

    for tok in _TOKEN.findall(content):
        if tok[:1] in b"/([<" or tok in (b"]", b">>") or re.fullmatch(rb"[-+.0-9]+", tok):
            operands.append(tok)
            continue
        op = tok
        try:
            if op == b"q":
                stack.append((ctm, fill, stroke))
            elif op == b"Q":
                if stack:
                    ctm, fill, stroke = stack.pop()
            elif op == b"cm":
                ctm = _mul(tuple(nums(6)), ctm)  # type: ignore[arg-type]
            elif op in (b"rg", b"g", b"k"):
                fill = tuple(nums({b"rg": 3, b"g": 1, b"k": 4}[op]))
                if op == b"k":
                    fill = (0.0,) if any(fill) else (1.0,)
            elif op in (b"RG", b"G", b"K"):
                stroke = tuple(nums({b"RG": 3, b"G": 1, b"K": 4}[op]))
            elif op == b"re":
                x, y, w, h = nums(4)
                path += [(x, y), (x + w, y + h)]
            elif op in (b"m", b"l"):
                path.append(tuple(nums(2)))  # type: ignore[arg-type]
            elif op == b"c":
                v = nums(6)
                path += [(v[0], v[1]), (v[2], v[3]), (v[4], v[5])]
            elif op in (b"v", b"y"):
                v = nums(4)
                path += [(v[0], v[1]), (v[2], v[3])]
            elif op in (b"f", b"F", b"f*", b"B", b"B*", b"b", b"b*"):
                mark(path, fill)
                path = []
            elif op in (b"S", b"s"):
                mark(path, stroke)
                path = []
            elif op == b"n":
                path = []
            elif op == b"BT":
                tm = tlm = IDENTITY
            elif op == b"Tf":
                font_size = float(operands[-1])
            elif op == b"Tm":
                tm = tlm = tuple(nums(6))  # type: ignore[assignment]
            elif op in (b"Td", b"TD"):
                tx, ty = nums(2)
                tm = tlm = _mul((1, 0, 0, 1, tx, ty), tlm)
            elif op in (b"Tj", b"TJ", b"'", b'"'):
                m = _mul(tm, ctm)
                p0 = _apply(m, 0, 0)
                p1 = _apply(m, 0, font_size)
                if not _is_white(fill):
                    page.text_sizes.append(abs(p1[1] - p0[1]))
                    page.texts.append((p0[1], abs(p1[1] - p0[1])))
                    saved, ctm = ctm, IDENTITY
                    mark([p0, p1], fill)
                    ctm = saved
            elif op == b"Do":
                mark([(0, 0), (1, 1)], (0.0,))
            elif op in (b"BDC", b"BMC"):
                name = next((o for o in reversed(operands) if o.startswith(b"/")), b"/")
                if op == b"BDC":  # BDC takes a tag and a dictionary: the tag is the first name
                    names = [o for o in operands if o.startswith(b"/")]
                    name = names[0] if names else name
                tags.append(name[1:].decode("latin1"))
            elif op == b"EMC" and tags:
                tags.pop()
        except (ValueError, IndexError):  # an operator with operands we do not model
            pass
        operands = []
