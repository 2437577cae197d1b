"""Search: request parsing (API v2 parameters, Essie expressions), ranking, filters, facets, geography.

Only the request side is re-exported here; ``search()`` lives in ``trialfinder.search.engine``.
"""

from trialfinder.search.essie import EssieSyntaxError, parse_essie
from trialfinder.search.request import SearchError, SearchRequest, from_api_params

__all__ = ["EssieSyntaxError", "SearchError", "SearchRequest", "from_api_params", "parse_essie"]
