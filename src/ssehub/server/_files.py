"""Files from a folder: the static site (`static_dir`) and ssehub's own
browser files (`ASSETS`)."""

from __future__ import annotations

import mimetypes
from dataclasses import replace
from importlib.resources import files
from pathlib import Path

from ssehub.mercure import HTTPError, Response
from ssehub.mercure._auth import COOKIE

from ._handler import Handler, Request, Streaming

__all__ = ("ASSETS", "Files", "SetsCookie", "file_response")

ASSETS = Path(str(files("ssehub").joinpath("assets"))).resolve()
_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".html": "text/html",
    ".ico": "image/vnd.microsoft.icon",  # (not left to the system's MIME table)
}


def file_response(folder: Path, path: str) -> Response:
    """The file at `path` below `folder` (`index.html` for a folder); 404
    for anything outside it."""
    relative = path.lstrip("/") or "index.html"
    target = (folder / relative).resolve()
    if target.is_dir():
        target = target / "index.html"
    if not target.is_relative_to(folder) or not target.is_file():
        raise HTTPError(404, f"not found: {path}")
    ctype = _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0]
    ctype = ctype or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
        ctype += "; charset=utf-8"
    return Response(200, target.read_bytes(), ctype, (("Cache-Control", "no-cache"),))


class Files:
    """Serves `folder` at `/`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()

    async def __call__(self, request: Request) -> Response:
        return file_response(self.folder, request.path)


class SetsCookie:
    """`handler`, whose successful answers also set the `mercureAuthorization`
    cookie to `token` (`HttpOnly; SameSite=Strict; Path=/`): the page's
    publisher token, out of reach of the page's scripts and of other sites."""

    def __init__(self, handler: Handler, token: str) -> None:
        self._handler = handler
        self._header = ("Set-Cookie", f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")

    async def __call__(self, request: Request) -> Response | Streaming:
        answer = await self._handler(request)
        if isinstance(answer, Response) and answer.status == 200:
            return replace(answer, headers=(*answer.headers, self._header))
        return answer
