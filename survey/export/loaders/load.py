"""Load the survey export into pandas, with its labels.

In the unzipped folder: ``python -i load.py``, or ``frames = runpy.run_path("load.py")["frames"]``.
``frames`` maps each CSV file's name ("responses", "answers_long", "paradata", "codebook",
"examples" when included) to a DataFrame:

- coded columns are categoricals whose categories are the labels in ``LANG`` ("en" or "ru");
- integer columns are nullable integers (pandas ``Int64``);
- empty and "suppressed" cells are missing (NA): datapackage.json says, per column, what an
  empty cell means there (x-missingValueLabels);
- ``frames["responses"].attrs["labels"]`` maps every column to its question text.

Everything comes from datapackage.json, the machine-readable codebook beside this file.
"""

import json
from pathlib import Path

import pandas as pd

LANG = "en"  # or "ru"
FOLDER = Path(__file__).resolve().parent if "__file__" in globals() else Path.cwd()


def load(folder=FOLDER, lang=LANG) -> dict:
    """Every CSV file of the data package as a labelled DataFrame, by name."""
    folder = Path(folder)
    package = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    frames = {}
    for resource in package["resources"]:
        schema = resource["schema"]
        frame = pd.read_csv(
            folder / resource["path"],
            sep=resource["dialect"]["delimiter"],
            encoding=resource["encoding"],  # "utf-8-sig": the excel variant's byte-order mark
            dtype=str,  # codes stay codes ("01" is not 1): types are set below
            keep_default_na=False,  # only the package's missing values are missing
            na_values=schema["missingValues"],
        )
        for field in schema["fields"]:
            name = field["name"]
            if field["type"] == "integer":
                frame[name] = pd.to_numeric(frame[name]).astype("Int64")
            elif "categories" in field:
                codes = [category["value"] for category in field["categories"]]
                labels = field["x-categoryLabels"][lang]
                frame[name] = pd.Categorical(
                    frame[name].map(dict(zip(codes, labels, strict=True))), categories=labels
                )
        frame.attrs["labels"] = {
            field["name"]: field.get("x-labels", {}).get(lang, "") for field in schema["fields"]
        }
        frames[resource["name"]] = frame
    return frames


frames = load()

if __name__ == "__main__":
    for name, frame in frames.items():
        print(f"{name}: {len(frame)} rows, {len(frame.columns)} columns")
