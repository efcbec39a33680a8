"""Fill missing Russian translations in the .po file from a Python dict file (maintainer tool).

Usage: python tools/po_fill.py DICT.py   (DICT.py defines RU = {msgid: translation})
"""

import runpy
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parent.parent / "survey/translations/ru/LC_MESSAGES/messages.po"


def main(dict_path: str) -> None:
    """Set msgstr for every msgid found in the dict, leaving the others untouched."""
    ru = runpy.run_path(dict_path)["RU"]
    with PO.open("rb") as fh:
        catalog = read_po(fh, locale="ru")
    filled = 0
    for message in catalog:
        if message.id and message.id in ru:
            message.string = ru[message.id]
            if "fuzzy" in message.flags:
                message.flags.discard("fuzzy")
            filled += 1
    with PO.open("wb") as fh:
        write_po(fh, catalog, width=100)
    missing = [m.id for m in catalog if m.id and not m.string]
    print(f"filled {filled}; untranslated {len(missing)}")
    for msgid in missing:
        print("  missing:", msgid)


if __name__ == "__main__":
    main(sys.argv[1])
