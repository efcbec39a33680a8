"""The HTTP responses of an export, for the dashboard's and the API's download routes."""

from __future__ import annotations

from flask import Response, send_file, stream_with_context

from survey.export.files import BY_NAME
from survey.export.options import ExportOptions, requested_file
from survey.export.release import Export


def download(args, name: str | None = None) -> Response:
    """A Flask response with the requested export file (or the zip), streamed.

    ``args`` are the request's query parameters (a MultiDict, so that a repeated name is
    seen); ``name`` is the file when the URL path carries it. Raises
    :class:`~survey.export.options.ExportRequestError` for a bad request and
    :class:`survey.anonymize.ExportRefused` when a safe release is not possible.
    """
    options = ExportOptions.from_mapping(args)
    name = requested_file(args, name, options)
    export = Export(options)
    stamp = export.download_stem
    if name == "zip":
        return send_file(
            export.zip_file(),
            mimetype="application/zip",
            as_attachment=True,
            download_name=f"{stamp}.zip",
            max_age=0,
        )
    file = BY_NAME[name]
    response = Response(stream_with_context(export.csv_chunks(name)), mimetype=file.mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{file.label}"'
    response.headers["Cache-Control"] = "no-store"
    return response
