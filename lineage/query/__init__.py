"""Reads: provenance traversals by recursive SQL, returned as small networkx graphs,
and the analyses built on them (which data, impact, diff, blame, run search, insights,
staleness).

Every query fetches only the subgraph it needs, so its cost follows the answer, not
the store:

* a walk is one recursive CTE over the indexed ``edges`` table (``UNION``, so a cycle
  in bad data ends the walk instead of hanging it) that returns ids only; the rows of
  the nodes it reached are then fetched by id, and the edges among them by one
  indexed query per chunk of ids;
* predictions live in their own compact table, joined to the graph by an implicit
  ``was_derived_from`` edge from each prediction to ``predictions.model``. A walk
  never drags them through the CTE: upstream, a prediction is resolved to its model
  before the walk starts; downstream, the predictions of the models reached are
  counted per model (``COUNT(*)`` on the ``model`` index) and only listed when asked.
  The rare prediction that something else depends on (a run that used predictions)
  is a *bridge*: the walk is continued from it, so nothing downstream is missed.

The SQL is portable on purpose (one recursive ``SELECT`` per CTE, ``VALUES`` seeds,
no SQLite-only functions except where a comment names the PostgreSQL equivalent).

The modules: `subgraph` (the `Subgraph` a walk returns), `closure` (the walking
machinery every query shares), `walk` (trace, impact, path, common ancestors),
`results` (the analyses' result types), `analysis` (which data, diff, blame),
`filters` and `search` (the runs filter language and its SQL), `importance`
(insights) and `staleness` (status).
"""

from .analysis import blame, diff, which_data
from .filters import parse_filter
from .importance import insights
from .results import Change, DataUse, Diff, Insights, ParamImportance, Status, Suspect
from .search import count_runs, parse_order, runs
from .staleness import status
from .subgraph import Subgraph, build_subgraph
from .walk import common_ancestors, impact, path, trace

__all__ = [
    "Change",
    "DataUse",
    "Diff",
    "Insights",
    "ParamImportance",
    "Status",
    "Subgraph",
    "Suspect",
    "blame",
    "build_subgraph",
    "common_ancestors",
    "count_runs",
    "diff",
    "impact",
    "insights",
    "parse_filter",
    "parse_order",
    "path",
    "runs",
    "status",
    "trace",
    "which_data",
]
