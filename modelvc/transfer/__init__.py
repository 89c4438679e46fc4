"""Moving a repository's data to and from a remote: push, fetch, pull and clone.

One job per module: `counting` (requests and bytes of a backend), `view` (what a remote holds:
its refs and its cached pack indexes), `closure` (what a set of commits needs), `refsel` (which
refs travel), `chunkfetch` (ranged reads of chunks), `objectfetch` (of metadata objects),
`outgoing` (packs built for a push), and one module per operation (`push`, `fetch`, `pull`,
`clone`). See docs/format.md for the remote layout.
"""
