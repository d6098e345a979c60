"""Reading an uploaded table (an xlsx workbook, a CSV or a plain text list)
into rows of strings, refusing hostile files with a message that names the limit.

This module is what the child process runs (``enrollment_site.lib.uploads``
starts it as ``python -I upload_reader.py`` with a time limit and a memory
ceiling): it imports nothing of the project, nor Django, so the child starts
quickly and a hostile file can exhaust only that child's memory and CPU, never
a web worker's. ``read_table`` can also be called directly (tests do).

An xlsx is checked before openpyxl opens it, entry by entry (a ratio summed
over the whole archive lets stored padding hide a bomb): the number of
entries, each entry's uncompressed size and its own compression ratio, the
total, no encrypted, nested, overlapping, duplicate or oddly named entries,
and the number of shared strings (a string table of millions of tiny strings
is small on disk and huge in memory). The declared sizes can be trusted as
upper bounds: ``zipfile`` stops reading an entry at its declared size and
fails its CRC check. openpyxl then parses XML through defusedxml (no entity
expansion, no external entities), in read-only mode, and reading stops at the
row cap whatever size the sheet claims. CSV and text must be UTF-8 without NUL
bytes. Whatever gets through these checks is still bounded by the child's
limits.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys
import zipfile
from dataclasses import asdict, dataclass

MB = 1024 * 1024
# Exit status of a child that ran out of memory (MemoryError under its ceiling).
MEMORY_EXIT = 75


@dataclass(frozen=True)
class Limits:
    """What one uploaded table may hold. The zip limits follow from the cells
    the rows and columns allow: a part larger than every cell written out in
    full, or more shared strings than cells, is not a table of that size."""

    max_rows: int = 50_000  # rows below the header
    max_columns: int = 100
    max_entries: int = 200
    # The XML of one cell holding a short value as an inline string
    # (<c r="CV50001" t="inlineStr"><is><t>x</t></is></c>) takes about 50 bytes.
    bytes_per_cell: int = 64
    # Real workbooks compress each part 3 to 25 times; above this an entry is a bomb.
    max_ratio: int = 150
    # Parts smaller than this are never a threat, whatever their ratio.
    ratio_floor: int = MB

    @property
    def max_cells(self) -> int:
        return (self.max_rows + 1) * self.max_columns

    @property
    def max_part_bytes(self) -> int:
        # Small parts (a theme, styles) are harmless whatever the caps.
        return max(self.max_cells * self.bytes_per_cell, self.ratio_floor)

    @property
    def max_total_bytes(self) -> int:
        # The sheet and its shared strings may each be as large as one part can be.
        return 2 * self.max_part_bytes

    @property
    def max_shared_strings(self) -> int:
        return self.max_cells


class TableError(Exception):
    """The file cannot be read as a table; the message says why."""


def _mb(n: int) -> str:
    if n >= 10 * MB:
        return f"{n / MB:,.0f} MB"
    return f"{n / MB:,.1f} MB" if n >= MB else f"{n / 1024:,.0f} kB"


def _rows_columns(limits: Limits) -> str:
    return f"{limits.max_rows:,} rows × {limits.max_columns:,} columns"


# --- xlsx: the zip directory, then openpyxl -------------------------------------------

NESTED_SUFFIXES = (".zip", ".xlsx", ".xlsm", ".xlsb", ".docx", ".pptx", ".jar", ".gz", ".bz2", ".xz", ".7z", ".rar", ".bin", ".ole")
SHARED_STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
# An <si> element, with or without a namespace prefix.
SHARED_STRING = re.compile(rb"<(?:[A-Za-z_][\w.-]{0,40}:)?si[\s/>]")
SCAN_CHUNK = MB


def check_zip(data: bytes, limits: Limits) -> None:
    """Refuse a zip that is not a plain workbook of the size the limits allow,
    reading no more than the directory, four bytes of each entry and the shared strings."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise TableError("This is not a well-formed xlsx file (it is not a valid zip archive).") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_entries:
            raise TableError(f"This xlsx holds {len(infos):,} parts, more than the {limits.max_entries:,} allowed.")
        names = set()
        for info in infos:
            _check_entry(info, limits)
            if info.filename.lower() in names:
                raise TableError(f"This xlsx holds the part {info.filename!r} twice; it was not opened.")
            names.add(info.filename.lower())
        total = sum(i.file_size for i in infos)
        if total > limits.max_total_bytes:
            raise TableError(f"This xlsx unpacks to {_mb(total)}, more than the {_mb(limits.max_total_bytes)} "
                             f"that {_rows_columns(limits)} can need; it was not opened.")
        _check_no_overlap(infos)
        for info in infos:
            with zf.open(info) as part:
                if part.read(4) == b"PK\x03\x04":
                    raise TableError(f"This xlsx holds another archive ({info.filename}); nested archives are not read.")
        _check_shared_strings(zf, limits)


def _check_entry(info: zipfile.ZipInfo, limits: Limits) -> None:
    name = info.filename
    if info.flag_bits & 0x1:
        raise TableError(f"This xlsx is encrypted ({name}); save it without a password.")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise TableError(f"This xlsx uses an unusual compression ({name}); save it again from a spreadsheet program.")
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or "\x00" in name:
        raise TableError(f"This xlsx holds an oddly named part ({name!r}); it was not opened.")
    if name.lower().endswith(NESTED_SUFFIXES):
        raise TableError(f"This xlsx holds another archive or embedded file ({name}); nested archives are not read.")
    if info.file_size > limits.max_part_bytes:
        raise TableError(f"The part {name} unpacks to {_mb(info.file_size)}, more than the {_mb(limits.max_part_bytes)} "
                         f"that {_rows_columns(limits)} can need; it was not opened.")
    if info.file_size > limits.ratio_floor and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        ratio = info.file_size // max(info.compress_size, 1)
        raise TableError(f"The part {name} unpacks to {ratio:,} times its size (a zip bomb?); the limit is "
                         f"{limits.max_ratio} times. It was not opened.")


def _check_no_overlap(infos: list[zipfile.ZipInfo]) -> None:
    # Overlapping entries (several names sharing one compressed stream) are how
    # a small archive declares many large parts; no spreadsheet program writes them.
    ordered = sorted(infos, key=lambda i: i.header_offset)
    for this, after in zip(ordered, ordered[1:], strict=False):
        if after.header_offset < this.header_offset + 30 + len(this.orig_filename.encode()) + this.compress_size:
            raise TableError(f"This xlsx has overlapping parts ({this.filename}, {after.filename}); it was not opened.")


def _shared_string_parts(zf: zipfile.ZipFile) -> set[str]:
    """The parts openpyxl reads as shared strings: named so in [Content_Types].xml
    (which is how openpyxl finds them), and any part named like one."""
    found = {i.filename for i in zf.infolist() if "sharedstrings" in i.filename.lower()}
    try:
        info = zf.getinfo("[Content_Types].xml")
    except KeyError:
        return found
    if info.file_size > MB:
        raise TableError(f"The part [Content_Types].xml unpacks to {_mb(info.file_size)}; a workbook's is a few kilobytes. It was not opened.")
    from defusedxml import ElementTree  # type: ignore[import-untyped]

    try:
        root = ElementTree.fromstring(zf.read(info))
    except Exception as exc:  # defusedxml refuses entities; any parse error means a broken file
        raise TableError(f"This is not a well-formed xlsx file ({type(exc).__name__} in [Content_Types].xml).") from exc
    for element in root.iter():
        if element.get("ContentType") == SHARED_STRINGS_TYPE and element.get("PartName"):
            found.add(element.get("PartName", "").lstrip("/"))
    return found


def _check_shared_strings(zf: zipfile.ZipFile, limits: Limits) -> None:
    """Count the shared strings by streaming each string table through a
    regular expression (fast, constant memory), stopping past the cap."""
    names = {i.filename for i in zf.infolist()}
    count = 0
    for name in sorted(_shared_string_parts(zf) & names):
        carry = b""
        with zf.open(name) as part:
            while chunk := part.read(SCAN_CHUNK):
                buffer = carry + chunk
                # Matches that may continue into the next chunk are counted with it.
                keep = min(len(buffer), 64)
                count += sum(1 for m in SHARED_STRING.finditer(buffer) if m.start() < len(buffer) - keep)
                carry = buffer[len(buffer) - keep:]
                if count > limits.max_shared_strings:
                    raise TableError(f"This xlsx holds more than {limits.max_shared_strings:,} shared strings, more than "
                                     f"{_rows_columns(limits)} can need; it was not opened.")
            count += len(SHARED_STRING.findall(carry))
    if count > limits.max_shared_strings:
        raise TableError(f"This xlsx holds {count:,} shared strings, more than {_rows_columns(limits)} can need; it was not opened.")


def _xlsx_rows(data: bytes, limits: Limits):
    check_zip(data, limits)
    import openpyxl

    # Refuse to run at all if openpyxl would parse XML without defusedxml.
    if not openpyxl.DEFUSEDXML:
        raise RuntimeError("defusedxml must be installed: openpyxl would expand XML entities")
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # openpyxl raises many kinds; defusedxml's among them
        raise TableError(f"This is not a well-formed xlsx file ({type(exc).__name__}).") from exc
    try:
        ws = wb.worksheets[0]
        # max_row caps what we read whatever dimension the sheet declares.
        for values in ws.iter_rows(max_row=limits.max_rows + 2, max_col=limits.max_columns + 1, values_only=True):
            cells = ["" if v is None else str(v).strip() for v in values]
            while cells and not cells[-1]:  # read-only rows are padded to max_col
                cells.pop()
            yield cells
    except (TableError, MemoryError):
        raise
    except Exception as exc:
        raise TableError(f"This xlsx could not be read ({type(exc).__name__}: {exc}).") from exc
    finally:
        wb.close()


# --- text: CSV and plain lists -----------------------------------------------------------

DELIMITERS = (",", ";", "\t")


def sniff_delimiter(text: str) -> str:
    """The delimiter a spreadsheet most likely used: the most frequent of comma,
    semicolon (European Excel) and tab on the first non-blank line."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in DELIMITERS}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else ","


def _text(data: bytes) -> str:
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        raise TableError(f"Row {line}: the file contains a NUL byte; it is not a text CSV file. Upload a UTF-8 CSV or text file.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TableError(f"Row {line}: the file is not UTF-8 text. Save it as “CSV UTF-8” and try again.") from exc


def _csv_rows(data: bytes, delimiter: str | None):
    text = _text(data)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter or sniff_delimiter(text), strict=True)
    try:
        for values in reader:
            yield [v.strip() for v in values]
    except csv.Error as exc:
        raise TableError(f"Row {reader.line_num}: malformed CSV ({exc}).") from exc


def _lines(data: bytes):
    for line in _text(data).splitlines():
        if line.strip():
            yield [line.strip()]


# --- the table ------------------------------------------------------------------------

def read_table(*, name: str, data: bytes, limits: Limits, formats: tuple[str, ...] = ("xlsx", "csv"), delimiter: str | None = ",",
               txt: str = "csv") -> list[list[str]]:
    """Rows of cells (stripped strings) from an upload, its header first, with
    trailing empty rows dropped. ``formats`` are those accepted (``xlsx``,
    ``csv``); a ``.txt`` file is read as ``txt`` says: ``csv``, or ``lines``
    (one cell per line). ``delimiter`` None: sniffed from the first line.
    Raises TableError with a clear message for anything else."""
    lower = name.lower()
    is_zip = data[:4] == b"PK\x03\x04"
    if "xlsx" in formats and (lower.endswith((".xlsx", ".xlsm")) or is_zip):
        rows_iter = _xlsx_rows(data, limits)
    elif lower.endswith(".txt") and txt == "lines":
        rows_iter = _lines(data)
    elif lower.endswith((".csv", ".txt")) or ("xlsx" not in formats and not lower.endswith((".xlsx", ".xlsm"))):
        rows_iter = _csv_rows(data, delimiter)
    else:
        raise TableError("Upload an .xlsx workbook or a UTF-8 .csv file." if "xlsx" in formats else "Upload a UTF-8 .csv or .txt file.")
    rows: list[list[str]] = []
    for values in rows_iter:
        if len(rows) > limits.max_rows:
            noun = "row" if limits.max_rows == 1 else "rows"
            raise TableError(f"The file has more than {limits.max_rows:,} {noun}; split it and import the parts.")
        if len(values) > limits.max_columns:
            raise TableError(f"Row {len(rows) + 1}: more than {limits.max_columns:,} columns.")
        rows.append(values)
    # read-only sheets may pad with empty rows up to their declared dimension
    while rows and not any(rows[-1]):
        rows.pop()
    return rows


# --- the child process ------------------------------------------------------------------

def _limit_self(*, seconds: int, memory_mb: int) -> None:
    """Cap this process: CPU seconds (SIGXCPU, then SIGKILL a second later) and
    address space (allocations beyond it fail with MemoryError)."""
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * MB, memory_mb * MB))


def main() -> None:
    """Read one upload from stdin (a JSON line of options, then the file's
    bytes) and write {"rows": ...} or {"error": ...} as JSON to stdout."""
    options = json.loads(sys.stdin.buffer.readline())
    _limit_self(seconds=options["seconds"], memory_mb=options["memory_mb"])
    try:
        data = sys.stdin.buffer.read()
        rows = read_table(name=options["name"], data=data, limits=Limits(**options["limits"]), formats=tuple(options["formats"]),
                          delimiter=options["delimiter"], txt=options["txt"])
        del data
        out = json.dumps({"rows": rows}, ensure_ascii=False)
    except TableError as exc:
        out = json.dumps({"error": str(exc)}, ensure_ascii=False)
    except MemoryError:
        os._exit(MEMORY_EXIT)
    sys.stdout.write(out)
    sys.stdout.flush()


def child_options(*, name: str, limits: Limits, seconds: int, memory_mb: int, formats: tuple[str, ...], delimiter: str | None, txt: str) -> bytes:
    """The first line the child reads."""
    return json.dumps({"name": name, "limits": asdict(limits), "seconds": seconds, "memory_mb": memory_mb,
                       "formats": list(formats), "delimiter": delimiter, "txt": txt}).encode() + b"\n"


if __name__ == "__main__":
    main()
