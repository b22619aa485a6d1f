"""CSL's title-generation TSV (a real Chinese summarisation set: paper abstract -> title) as pixiu records.

The files of CSL's `benchmark/ts` have no header and three tab-separated columns: the task prompt
("to title"), the abstract and the title. Rows become `{"abstract": …, "title": …}`, which the zhihu
formatter reads as summarisation examples.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pixiu import PixiuError


def read_csl_tsv(path: Path) -> Iterator[dict[str, str]]:
    """Yield `{"abstract", "title"}` for every row of a CSL TSV file (3 columns, or 2 without the prompt).

    Raises:
        PixiuError: The file is missing, or a row has another number of columns or an empty field
            (the message names the file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise PixiuError(f"{path}: no such file; pass a CSL .tsv such as csl_ts_dev.tsv")
    with path.open(encoding="utf-8", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            columns = line.split("\t")
            if len(columns) not in (2, 3):
                raise PixiuError(
                    f"{path}:{number}: expected 3 tab-separated columns (prompt, abstract, title), found {len(columns)}"
                )
            abstract, title = (column.strip() for column in columns[-2:])
            if not abstract or not title:
                raise PixiuError(f"{path}:{number}: the abstract or the title is empty")
            yield {"abstract": abstract, "title": title}
