"""The language server: pygls wiring from protocol messages to the analyses.

Diagnostics are pushed after every change (debounced while typing) for every file of the
project the changed file belongs to, so an edit in one file re-checks the files that import it;
files that became clean get an empty list.  Requests (hover, definition, ...) use the analysis of
the buffers as they are now.  No handler lets an exception escape: a failure is logged to the
client and the request answers with nothing, so the editor session goes on.
"""

from __future__ import annotations

import asyncio
import functools
import re
import traceback
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from astra.lsp import actions, completion, hover, symbols
from astra.lsp.documents import Analysis, Workspace
from astra.lsp.index import index, written
from astra.lsp.operators import signatures
from astra.lsp.report import by_file, cached_lines, lines_of, uri_of
from astra.plan.lock import LOCK_NAME

DEBOUNCE_S = 0.2  # wait for a pause in typing before checking the project again


class AstraServer(LanguageServer):
    """The pygls server plus the workspace of open buffers and analyses."""

    def __init__(self) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            release = version("astra")
        except PackageNotFoundError:
            release = "dev"
        super().__init__("astra", release, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.docs = Workspace()
        self.published: dict[tuple[Path, bool], set[str]] = {}
        self.pending: dict[Path, asyncio.Task] = {}
        self.told_single: set[Path] = set()
        self.uris: dict[Path, str] = {}  # the client's URI of each buffer opened, by path

    def uri(self, path: Path) -> str:
        return self.uris.get(path) or uri_of(path)

    @property
    def encoding(self) -> str:
        chosen = self.server_capabilities.position_encoding if self.protocol.server_capabilities else None
        return str(getattr(chosen, "value", chosen) or "utf-16")

    def log(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        self.window_log_message(types.LogMessageParams(type=kind, message=message))


server = AstraServer()


# A buffer that is no file (`untitled:Untitled-1`) is checked alone under a made-up path that
# exists nowhere, so nothing on disk can take its place.
UNSAVED = Path("/") / "astra-unsaved-buffers"


def path_of(uri: str) -> Path | None:
    fs = to_fs_path(uri)
    if not fs:
        name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in uri)[:100]
        return UNSAVED / f"{name}.feat"
    try:
        return Path(fs).resolve()
    except (OSError, RuntimeError, ValueError):
        return None


def guarded(default=None):
    """Never let a handler's exception reach pygls: log it and answer `default`."""

    def wrap(fn):
        @functools.wraps(fn)
        def run(ls: AstraServer, params):
            try:
                return fn(ls, params)
            except Exception:  # a bug must not end the editing session
                ls.log(f"astra lsp: {fn.__name__} failed:\n{traceback.format_exc()}", types.MessageType.Error)
                return default

        return run

    return wrap


@server.feature(types.INITIALIZED)
async def on_initialized(ls: AstraServer, params: types.InitializedParams) -> None:
    """Ask the client to report `.feat` and `astra.lock` files changed outside the editor (a git
    checkout, a released lock), when it can be asked; VS Code's extension asks for itself."""
    workspace = ls.client_capabilities.workspace
    watched = workspace.did_change_watched_files if workspace else None
    if not (watched and watched.dynamic_registration):
        return
    watchers = [types.FileSystemWatcher(glob_pattern=g) for g in ("**/*.feat", "**/astra.lock")]
    try:
        await ls.client_register_capability_async(types.RegistrationParams(registrations=[types.Registration(
            id="astra-watched-files", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers))]))
    except Exception as err:  # a client that declines: edits are still checked, disk changes on save
        ls.log(f"astra: the client did not watch files for the server ({err})")


# --------------------------------------------------------------------------- diagnostics


def publish(ls: AstraServer, path: Path) -> None:
    """Check the project of `path` and push the diagnostics of every file it reads."""
    try:
        analysis = ls.docs.analysis_for(path)
    except Exception as err:  # a compiler bug: say so where the user looks, keep serving
        ls.log(f"astra lsp: checking `{path}` failed:\n{traceback.format_exc()}", types.MessageType.Error)
        problem = types.Diagnostic(range=types.Range(start=types.Position(line=0, character=0),
                                                     end=types.Position(line=0, character=0)),
                                   message=f"astra could not check this file (an internal error: "
                                           f"{type(err).__name__}: {err}); see the server log",
                                   severity=types.DiagnosticSeverity.Error, source="astra")
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=ls.uri(path),
                                                                            diagnostics=[problem]))
        return
    push(ls, analysis, path)


def push(ls: AstraServer, analysis: Analysis, path: Path) -> None:
    """Push the diagnostics of `analysis` (those with no place go to `path`), and an empty list to
    each file it reported on before and no longer does."""
    if analysis.single and path not in ls.told_single:
        ls.told_single.add(path)
        ls.log(f"astra: no {LOCK_NAME} above `{path.name}`, or its project does not import it: "
               "checked as a single-file project")
    found = by_file(analysis, path, ls.encoding)
    if analysis.single:  # the files it imports are shown by their own projects
        found = {path: found.get(path, [])}
    where = (analysis.root, analysis.single)
    now = {ls.uri(p): ds for p, ds in found.items()}
    for uri in ls.published.get(where, set()) - set(now):
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))
    for uri, ds in now.items():
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=ds))
    ls.published[where] = set(now)


def publish_later(ls: AstraServer, path: Path) -> None:
    """Publish once typing pauses; a newer edit cancels the pending check."""
    old = ls.pending.pop(path, None)
    if old is not None:
        old.cancel()

    async def later() -> None:
        await asyncio.sleep(DEBOUNCE_S)
        ls.pending.pop(path, None)
        try:
            publish(ls, path)
        except Exception:
            ls.log(f"astra lsp: checking failed:\n{traceback.format_exc()}", types.MessageType.Error)

    ls.pending[path] = asyncio.get_running_loop().create_task(later())


@server.feature(types.TEXT_DOCUMENT_DID_OPEN)
@guarded()
def did_open(ls: AstraServer, params: types.DidOpenTextDocumentParams) -> None:
    path = path_of(params.text_document.uri)
    if path is not None:
        ls.uris[path] = params.text_document.uri
        ls.docs.set_text(path, params.text_document.text)
        publish(ls, path)


@server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
@guarded()
def did_change(ls: AstraServer, params: types.DidChangeTextDocumentParams) -> None:
    path = path_of(params.text_document.uri)
    if path is not None:
        ls.docs.set_text(path, ls.workspace.get_text_document(params.text_document.uri).source)
        publish_later(ls, path)


@server.feature(types.TEXT_DOCUMENT_DID_SAVE)
@guarded()
def did_save(ls: AstraServer, params: types.DidSaveTextDocumentParams) -> None:
    path = path_of(params.text_document.uri)
    if path is not None:
        pending = ls.pending.pop(path, None)
        if pending is not None:  # this check covers the edits it was waiting for
            pending.cancel()
        ls.docs.touch()
        publish(ls, path)


@server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
@guarded()
def did_close(ls: AstraServer, params: types.DidCloseTextDocumentParams) -> None:
    path = path_of(params.text_document.uri)
    if path is None:
        return
    ls.docs.set_text(path, None)
    pending = ls.pending.pop(path, None)
    if pending is not None:
        pending.cancel()
    analysis = ls.docs.analysis_for(path)
    if analysis.single:  # nothing else shows it: its diagnostics go with the buffer
        ls.published.pop((analysis.root, True), None)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=params.text_document.uri,
                                                                            diagnostics=[]))
    else:
        publish(ls, path)


@server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
@guarded()
def did_change_watched(ls: AstraServer, params: types.DidChangeWatchedFilesParams) -> None:
    ls.docs.touch()
    for root, single in list(ls.published):  # a file changed under a project: check it again
        if not single:
            push(ls, ls.docs.analysis(root, single=False), root)
    for path in {p for c in params.changes if (p := path_of(c.uri)) is not None and p.suffix == ".feat"}:
        if path in ls.docs.overlay:
            publish(ls, path)


# --------------------------------------------------------------------------- requests


def _at(ls: AstraServer, uri: str, position: types.Position):
    """The analysis of the document, its display path and the character offset of `position`."""
    path = path_of(uri)
    if path is None:
        return None, None, 0
    analysis = ls.docs.analysis_for(path)
    display = analysis.display_of(path)
    return analysis, display, lines_of(analysis, path, ls.encoding).offset(position)


def _occurrence(ls: AstraServer, uri: str, position: types.Position):
    """(analysis, its index, the name occurrence under `position`), or None where there is none."""
    analysis, display, offset = _at(ls, uri, position)
    if display is None:
        return None
    idx = index(analysis)
    occ = idx.at(display, offset)
    return None if occ is None else (analysis, idx, occ)


def _location(ls: AstraServer, analysis: Analysis, span) -> types.Location | None:
    path = analysis.path_of(span.file)
    if path is None:
        return None
    return types.Location(uri=ls.uri(path), range=lines_of(analysis, path, ls.encoding).span_range(span))


@server.feature(types.TEXT_DOCUMENT_HOVER)
@guarded()
def on_hover(ls: AstraServer, params: types.HoverParams) -> types.Hover | None:
    found = _occurrence(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    analysis, _, occ = found
    text = hover.hover(analysis, occ.key)
    if text is None:
        return None
    lines = lines_of(analysis, analysis.path_of(occ.span.file), ls.encoding)
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text),
                       range=lines.span_range(occ.span))


@server.feature(types.TEXT_DOCUMENT_DEFINITION)
@guarded()
def on_definition(ls: AstraServer, params: types.DefinitionParams) -> list[types.Location] | None:
    found = _occurrence(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    analysis, idx, occ = found
    if occ.key[0] == "import":
        return _imported(ls, Path(occ.key[1]), occ.key[2])
    found = [loc for o in idx.definitions(occ.key) if (loc := _location(ls, analysis, o.span)) is not None]
    return found or None


def _imported(ls: AstraServer, here: Path, written: str) -> list[types.Location] | None:
    """The files an `import` reads: the file, or every `.feat` file of the directory."""
    try:
        target = (here / written).resolve()
        files = sorted(target.glob("*.feat")) if target.is_dir() else [target] if target.is_file() else []
    except (OSError, ValueError, RuntimeError):
        return None
    start = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
    return [types.Location(uri=ls.uri(f), range=start) for f in files] or None


@server.feature(types.TEXT_DOCUMENT_REFERENCES)
@guarded()
def on_references(ls: AstraServer, params: types.ReferenceParams) -> list[types.Location] | None:
    found = _occurrence(ls, params.text_document.uri, params.position)
    if found is None:
        return None
    analysis, idx, occ = found
    refs = idx.references(occ.key, include_definition=params.context.include_declaration)
    return [loc for o in refs if (loc := _location(ls, analysis, o.span)) is not None]


@server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "@"]))
@guarded()
def on_completion(ls: AstraServer, params: types.CompletionParams) -> types.CompletionList | None:
    path = path_of(params.text_document.uri)
    if path is None:
        return None
    text = ls.workspace.get_text_document(params.text_document.uri).source
    offset = cached_lines(text, ls.encoding).offset(params.position)
    analysis = ls.docs.analysis_for(path)
    items = completion.complete(analysis, text, offset)
    if not _snippets(ls):  # `mean($0)` would be inserted as written: insert the bare name
        for item in items:
            if item.insert_text_format == types.InsertTextFormat.Snippet:
                item.insert_text, item.insert_text_format = item.label, None
    return types.CompletionList(is_incomplete=False, items=items)


def _snippets(ls: AstraServer) -> bool:
    caps = ls.client_capabilities.text_document
    item = caps.completion.completion_item if caps and caps.completion else None
    return bool(item and item.snippet_support)


@server.feature(types.TEXT_DOCUMENT_SIGNATURE_HELP,
                types.SignatureHelpOptions(trigger_characters=["(", ","], retrigger_characters=[" "]))
@guarded()
def on_signature_help(ls: AstraServer, params: types.SignatureHelpParams) -> types.SignatureHelp | None:
    """The signature of the function or aggregation being called at the cursor."""
    text = ls.workspace.get_text_document(params.text_document.uri).source
    found = completion.call_at(text, cached_lines(text, ls.encoding).offset(params.position))
    sig = signatures().get(found[0]) if found else None
    if sig is None:
        return None
    inside = sig.label[sig.label.index("(") + 1:sig.label.rindex(")")]
    names = [p.strip(" []") for p in re.split(r",|\[,", inside) if p.strip(" []")]
    return types.SignatureHelp(
        signatures=[types.SignatureInformation(
            label=sig.label, documentation=types.MarkupContent(kind=types.MarkupKind.Markdown, value=sig.doc),
            parameters=[types.ParameterInformation(label=n) for n in names])],
        active_signature=0, active_parameter=min(found[1], max(len(names) - 1, 0)))


@server.feature(types.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
@guarded()
def on_symbols(ls: AstraServer, params: types.DocumentSymbolParams) -> list[types.DocumentSymbol] | None:
    path = path_of(params.text_document.uri)
    if path is None:
        return None
    analysis = ls.docs.analysis_for(path)
    display = analysis.display_of(path)
    lines = lines_of(analysis, path, ls.encoding)
    out = []
    for module in analysis.modules:
        if module.path == display:
            out.extend(symbols.document_symbols(module, lines))
    return out


_KINDS = {"entity": types.SymbolKind.Class, "source": types.SymbolKind.Struct, "request": types.SymbolKind.Interface,
          "group": types.SymbolKind.Module, "feature": types.SymbolKind.Property, "service": types.SymbolKind.Object}


@server.feature(types.WORKSPACE_SYMBOL)
@guarded()
def on_workspace_symbol(ls: AstraServer, params: types.WorkspaceSymbolParams) -> list[types.SymbolInformation]:
    """Declarations whose name holds the query, in the projects of the open buffers."""
    query = params.query.lower()
    seen: dict[int, Analysis] = {}
    for path in list(ls.docs.overlay):
        analysis = ls.docs.analysis_for(path)
        seen.setdefault(id(analysis), analysis)
    out = []
    for analysis in seen.values():
        for key, occurrences in index(analysis).by_key.items():
            kind = _KINDS.get(key[0])
            if kind is None or query not in (name := written(key)).lower():
                continue
            for occ in occurrences:
                if occ.definition and (loc := _location(ls, analysis, occ.span)) is not None:
                    out.append(types.SymbolInformation(name=name, kind=kind, location=loc,
                                                       container_name=key[0]))
    return out[:500]


@server.feature(types.TEXT_DOCUMENT_FORMATTING)
@guarded()
def on_formatting(ls: AstraServer, params: types.DocumentFormattingParams) -> list[types.TextEdit] | None:
    doc = ls.workspace.get_text_document(params.text_document.uri)
    text = doc.source
    edits, why = actions.format_edits(text, Path(doc.path or "file.feat").name, cached_lines(text, ls.encoding))
    if why:
        ls.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=f"astra: {why}"))
    return edits


@server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]))
@guarded()
def on_code_action(ls: AstraServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
    path = path_of(params.text_document.uri)
    if path is None:
        return None
    only = params.context.only
    if only and not any(str(getattr(k, "value", k)).startswith("quickfix") for k in only):
        return None
    return actions.code_actions(ls.docs.analysis_for(path), path, params.range, ls.encoding, ls.uri)


def run() -> None:
    """Serve on stdin/stdout until the client says `exit`."""
    server.start_io()
