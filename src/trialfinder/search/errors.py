"""The errors of ``trialfinder.search``: bad input, always naming the parameter it came from.

Why a module of their own: every layer of the search raises them -- the Essie lexer and parser, the
request model, page tokens, the engine and the store's Essie compiler -- so they live at the bottom of the
package, importing nothing, and no layer has to import another just to report a mistake.
"""

from __future__ import annotations

from trialfinder.errors import TrialfinderError

__all__ = ["EssieSyntaxError", "SearchError"]


class SearchError(TrialfinderError, ValueError):
    """Bad search input, naming the offending parameter so a caller can point the user at it.

    Defined at the bottom of ``trialfinder.search`` so any layer can raise it without an import cycle;
    ``trialfinder.search.essie``, ``trialfinder.search.request`` and ``trialfinder.search`` re-export it.
    ``str(err)`` is ``"<param>: <message>"``.
    """

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message

    def with_param(self, param: str) -> SearchError:
        """The same error attributed to another parameter name (e.g. a field name -> its API name)."""
        return SearchError(param, self.message)


class EssieSyntaxError(SearchError):
    """An Essie expression that cannot be parsed; ``position`` is the 0-based character offset."""

    def __init__(self, position: int, detail: str, param: str = "query") -> None:
        super().__init__(param, f"syntax error at position {position}: {detail}")
        self.position = position
        self.detail = detail

    def with_param(self, param: str) -> EssieSyntaxError:
        return EssieSyntaxError(self.position, self.detail, param)
