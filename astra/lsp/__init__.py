"""The language server (`astra lsp`): the compiler's diagnostics, hover, navigation, completion,
symbols, formatting and fixes for `.feat` files, over the Language Server Protocol on stdio.

    documents.py   open buffers over the disk, project roots, one checked `Analysis` per project
    positions.py   character offsets <-> protocol positions (UTF-16 code units by default)
    index.py       every name's definition and references across a project's files
    report.py      compiler diagnostics as protocol diagnostics
    operators.py   functions, aggregations and operators with their signatures, from the registries
    hover.py, completion.py (and signature help), symbols.py, actions.py (quick fixes, formatting)
    server.py      the pygls wiring
"""
