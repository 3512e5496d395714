"""MLflow's model registry on a lineage store: the registry half of ``MlflowClient``.

A registered model is a model name; its versions are lineage's model versions
(``NAME@N``, in the order they were recorded or registered under it). An alias is a
promotion label (``NAME@LABEL``): one version holds it, and every change is a ledger
event with who and when (`Lineage.promote`). MLflow 2's stages are labels too:
``Staging`` and ``Production`` are the labels ``staging`` and ``production``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .entities import LoggedModel, PagedList, logged_model, model_source, paged, run_hex, to_ms
from .errors import InvalidInputError, NodeNotFoundError, WriteRefusedError
from .model import Node, version_number
from .tracking import NOTE_TAG

if TYPE_CHECKING:
    from .api import Lineage


class RegisteredModel:
    """MLflow's ``RegisteredModel``: ``aliases`` maps each alias to its version number."""

    def __init__(self, name: str, latest_versions: list[ModelVersion] | None = None,
                 aliases: dict[str, int] | None = None, description: str | None = None,
                 versions: Sequence[ModelVersion] = ()) -> None:
        self.name = name
        self.latest_versions = latest_versions or []
        self.aliases = aliases or {}
        self.description = description
        self.tags: dict[str, str] = {}
        # (when its first version was recorded, and its newest)
        self.creation_timestamp = versions[0].creation_timestamp if versions else None
        self.last_updated_timestamp = versions[-1].creation_timestamp if versions else None

    def __repr__(self) -> str:
        return f"<RegisteredModel {self.name} ({len(self.latest_versions)} latest)>"


class ModelVersion:
    """A registered model version (MLflow's ``ModelVersion``); ``.id`` is the lineage
    model id, ``NAME@version`` its reference."""

    def __init__(self, name: str, version: int, node: Node, run_id: str | None, aliases: list[str]) -> None:
        self.name = name
        self.version = version  # an int, as MLflow 3's SQL-backed registry returns it
        self.id = node.id
        self.run_id = run_id
        self.source = model_source(node, run_id)
        self.status = "READY"
        self.aliases = aliases
        # (a stage is a label this version holds: Production before Staging; promotion
        # is imported here, not by `import lineage`, which loads this module)
        from .promotion import STAGE_LABELS

        self.current_stage = next((s for s in ("Production", "Staging") if STAGE_LABELS[s] in aliases), "None")
        self.creation_timestamp = to_ms(node.created_at)
        self.last_updated_timestamp = self.creation_timestamp
        self.description = node.attrs.get("description") or ""
        self.tags: dict[str, str] = {}
        self.model_id = node.id

    def __repr__(self) -> str:
        return f"<ModelVersion {self.name}@{self.version} {self.id}>"


class ModelRegistry:
    """The registry calls of ``MlflowClient`` (it inherits them); ``_lg`` is its store."""

    _lg: Lineage

    def create_registered_model(self, name: str, tags: Mapping[str, Any] | None = None,
                                description: str | None = None) -> RegisteredModel:
        """Record a registered model, with its tags and description, before any version
        is registered under it (its versions are ``NAME@N``). Raises WriteRefusedError
        when it exists, as MLflow does."""
        self._lg.create_registered_model(_checked_name(name), tags, description)
        return self.get_registered_model(name)

    def get_registered_model(self, name: str) -> RegisteredModel:
        """The registered model: its latest version, aliases, tags and description.
        Raises NodeNotFoundError when it was neither created nor holds a version."""
        found = self._lg.registered_models(name)
        if not found:
            raise NodeNotFoundError(f"model:{name}", "no registered model has that name")
        return self._registered_model(found[0])

    def _registered_model(self, record: Mapping[str, Any]) -> RegisteredModel:
        """MLflow's view of a registered model from its `Lineage.registered_models` entry."""
        name = record["name"]
        versions = self._all_versions(name)
        aliases = {alias: v.version for v in versions for alias in v.aliases}  # ints, as MLflow 3 gives them
        rm = RegisteredModel(name, versions[-1:], dict(sorted(aliases.items())), record["description"],
                             versions=versions)
        rm.tags = record["tags"]
        # (created: when recorded or its first version was, whichever came first)
        first = [t for t in (to_ms(record["created_at"]), rm.creation_timestamp) if t is not None]
        last = [t for t in (to_ms(record["updated_at"]), rm.last_updated_timestamp) if t is not None]
        rm.creation_timestamp, rm.last_updated_timestamp = min(first, default=None), max(last, default=None)
        return rm

    def search_registered_models(self, filter_string: str | None = None, max_results: int = 100,
                                 order_by: Sequence[str] | None = None, page_token: Any = None) -> list[RegisteredModel]:
        """Registered models whose name and tags match ``filter_string`` (MLflow's
        syntax: ``name = 'churn'``, ``name LIKE 'churn%'``, ``tags.owner = 'risk'``), by name."""
        from . import mlflow_filter

        clauses = mlflow_filter.parse(filter_string, attributes=("name",))
        for c in clauses:
            if c.entity not in ("attributes", "tags"):
                raise InvalidInputError(f"this filter can compare name and tags.X only, not {c.entity}.{c.key}")

        def value(m: Mapping[str, Any], entity: str, key: str) -> Any:
            return m["tags"].get(key) if entity == "tags" else m["name"]

        found = [m for m in self._lg.registered_models()
                 if all(mlflow_filter.compare(value(m, c.entity, c.key), c.op, c.value) for c in clauses)]
        page = paged(found, max_results, page_token)  # (each record read once, here, not again per name)
        return PagedList([self._registered_model(m) for m in page], page.token)

    def update_registered_model(self, name: str, description: str | None = None,
                                deployment_job_id: str | None = None) -> RegisteredModel:
        """Describe a registered model: its tag ``mlflow.note.content`` (so every change
        stays in the ledger); ``.description`` reads it."""
        if description is not None:
            self._lg.set_registered_model_tags(name, {NOTE_TAG: description})
        return self.get_registered_model(name)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        """Tag a registered model (every change stays in the ledger; the newest value holds)."""
        self._lg.set_registered_model_tags(name, {key: value})

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Refused: a tag's history is kept; set it to another value instead."""
        raise WriteRefusedError("lineage's records are append-only: set the registered model's tag to another value "
                                "instead of deleting it")

    def delete_model_version_tag(self, name: str, version: str | int, key: str) -> None:
        """Refused, as `delete_registered_model_tag` is."""
        raise WriteRefusedError("lineage's records are append-only: set the version's tag to another value "
                                "instead of deleting it")

    def create_model_version(self, name: str, source: str, run_id: str | None = None, tags: Any = None,
                             run_link: str | None = None, description: str | None = None,
                             await_creation_for: int = 300, model_id: str | None = None) -> ModelVersion:
        """Register the model at ``source`` (``runs:/<run_id>/model``, ``models:/…`` or a
        lineage reference) as the next version of ``name``; a model already among its
        versions keeps its number (versions are content: the same bytes are one
        version). Raises NodeNotFoundError when ``source`` names no recorded model."""
        from .models import resolve_model_uri

        node = resolve_model_uri(self._lg, model_id or source)
        versions = self._versions(_checked_name(name))
        if version_number(versions, node.id) is None:
            self._lg.register_model(node, name)
            versions = self._versions(name)
        return self._numbered(name, node, versions, (f"{name}@{source}", "it could not be registered"))

    def get_model_version(self, name: str, version: str | int) -> ModelVersion:
        """Version N of a registered model. Raises NodeNotFoundError when there is none."""
        versions = self._versions(name)
        try:
            n = int(version)
        except (TypeError, ValueError):
            raise InvalidInputError(f"a version is a number, got {version!r}") from None
        if not 1 <= n <= len(versions):
            raise NodeNotFoundError(f"{name}@{version}", f"{name!r} has {len(versions)} version(s)")
        return self._version(name, n, versions[n - 1])

    def get_latest_versions(self, name: str, stages: Sequence[str] | None = None) -> list[ModelVersion]:
        """The newest version in each stage (of ``stages``, MLflow's names, any case;
        every stage when None), as MLflow 2's registry answers."""
        from .promotion import stage_name

        wanted = None if stages is None else {stage_name(s) for s in stages}
        newest: dict[str, ModelVersion] = {}
        for v in self._all_versions(name):
            if wanted is None or v.current_stage in wanted:
                newest[v.current_stage] = v
        return sorted(newest.values(), key=lambda v: v.version)

    def search_model_versions(self, filter_string: str | None = None, max_results: int = 10_000,
                              order_by: Sequence[str] | None = None, page_token: Any = None) -> list[ModelVersion]:
        """Versions matching ``filter_string`` (MLflow's syntax on ``name`` and
        ``run_id``: ``name = 'churn'``, ``run_id = '…'``, ``name IN (…)``,
        ``name LIKE …``), by name, newest version first."""
        clauses = _clauses(filter_string, allowed=("name", "run_id"))
        named = [str(c.value) for c in clauses if c.key.lower() == "name" and c.op == "="]
        names = named[:1] if named else self._lg.model_names()  # (one name: its versions only)
        found = [v for n in names for v in reversed(self._all_versions(n))
                 if _matches({"name": v.name, "run_id": v.run_id}, clauses)]
        return paged(found, max_results, page_token)

    def set_model_version_tag(self, name: str, version: str | int | None = None, key: str | None = None,
                              value: Any = None, stage: str | None = None) -> None:
        """Tag version N of a registered model (a version is a model: its tags are the
        model's, as `set_logged_model_tags` gives them; the latest value wins and
        every change stays in the ledger)."""
        if key is None or (version is None and stage is None):
            raise InvalidInputError("set_model_version_tag needs a version and a key")
        if stage is not None and version is None:  # (MLflow 2: the newest version in that stage)
            staged = self.get_latest_versions(name, [stage])
            if not staged:
                raise NodeNotFoundError(f"{name}@{stage}", f"no version of {name!r} is in stage {stage}")
            version = staged[0].version
        assert version is not None  # (checked above)
        self._lg.set_model_tags(self.get_model_version(name, version).id, {key: value})

    def update_model_version(self, name: str, version: str | int, description: str | None = None) -> ModelVersion:
        """Describe version N of a registered model: kept as MLflow keeps a run's
        description, the tag ``mlflow.note.content`` (here the model's), so every
        change stays in the ledger; ``.description`` reads it."""
        mv = self.get_model_version(name, version)
        if description is not None:
            self._lg.set_model_tags(mv.id, {NOTE_TAG: description})
            mv = self.get_model_version(name, version)
        return mv

    def set_logged_model_tags(self, model_id: str, tags: Mapping[str, Any]) -> None:
        """Tag a logged model (MLflow 3); see `set_model_version_tag`."""
        from .models import resolve_model_uri

        self._lg.set_model_tags(resolve_model_uri(self._lg, model_id), tags)

    def get_logged_model(self, model_id: str) -> LoggedModel:
        """A logged model in MLflow 3's shape (``entities.LoggedModel``), with its tags."""
        return logged_model(self._lg, model_id)

    def set_registered_model_alias(self, name: str, alias: str, version: str | int) -> None:
        """Point ``alias`` at a version: lineage's promotion label (``NAME@ALIAS`` resolves to it)."""
        mv = self.get_model_version(name, version)
        self._lg.promote(mv.id, alias, name=name)

    def get_model_version_download_uri(self, name: str, version: str | int) -> str:
        """Where the store keeps version N's bytes, as a ``file://`` URI (checked
        against its digest when `pyfunc.load_model` or ``sklearn.load_model`` reads it)."""
        mv = self.get_model_version(name, version)
        return self._lg.artifact_file(mv.id).resolve().as_uri()

    def delete_model_version(self, name: str, version: str | int) -> None:
        """Refused: the record is append-only. A version taken out of use loses its
        labels (`delete_registered_model_alias`, or the stage ``Archived``)."""
        self.get_model_version(name, version)  # (an unknown one is said as such first)
        raise WriteRefusedError(f"lineage's records are append-only: {name} version {version} is not deleted; "
                                "take its labels off with delete_registered_model_alias (or stage Archived)")

    def delete_registered_model(self, name: str) -> None:
        """Refused, as `delete_model_version` is."""
        self.get_registered_model(name)
        raise WriteRefusedError(f"lineage's records are append-only: registered model {name!r} is not deleted; "
                                "take its versions' labels off with delete_registered_model_alias")

    def rename_registered_model(self, name: str, new_name: str) -> None:
        """Refused: a registered name is the name its versions were recorded under, in
        the ledger; register them under the new name instead (`create_model_version`)."""
        self.get_registered_model(name)
        raise WriteRefusedError(f"a registered model's name is recorded with its versions: {name!r} is not renamed; "
                                f"register its versions under {new_name!r} with create_model_version")

    def delete_registered_model_alias(self, name: str, alias: str) -> None:
        """Take ``alias`` off the version holding it (a ledger event, as setting it was).
        Raises NodeNotFoundError when no version holds it."""
        self._lg.unpromote(name, alias)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """The version an alias points at. Raises NodeNotFoundError when none does."""
        try:
            node = self._lg.get(f"{name}@{alias}")
        except NodeNotFoundError:
            raise NodeNotFoundError(f"{name}@{alias}", "no version of that model holds the alias") from None
        return self._numbered(name, node, self._versions(name),
                              (f"{name}@{alias}", "no version of that model holds the alias"))

    def transition_model_version_stage(self, name: str, version: str | int, stage: str,
                                       archive_existing_versions: bool = False) -> ModelVersion:
        """MLflow 2's stages, as labels: ``Staging`` or ``Production`` puts that label
        on the version, ending it on the version that held it (one version holds a
        label: as ``archive_existing_versions=True`` does); ``None`` or ``Archived``
        takes the version's stage labels off. Each change is a ledger event."""
        mv = self.get_model_version(name, version)
        self._lg.set_stage(mv.id, name, stage)
        return self.get_model_version(name, mv.version)

    # -- versions ---------------------------------------------------------------

    def _versions(self, name: str) -> list[Node]:
        return list(self._lg.history(name, kind="model"))

    def _version(self, name: str, number: int, node: Node, labels: Mapping[str, Node] | None = None) -> ModelVersion:
        runs = self._lg.generated_by(node)
        held = labels if labels is not None else self._lg.labels(name)
        aliases = [label for label, holder in held.items() if holder.id == node.id]
        version = ModelVersion(name, number, node, run_hex(runs[-1].id) if runs else None, aliases)
        version.tags = self._lg.model_tags(node)
        version.description = version.tags.get(NOTE_TAG) or version.description
        return version

    def _numbered(self, name: str, node: Node, versions: Sequence[Node], missing: tuple[str, str]) -> ModelVersion:
        """``node`` as its version of ``name`` (``versions``, oldest first); when it is
        not one of them, NodeNotFoundError(``*missing``)."""
        number = version_number(versions, node.id)
        if number is None:
            raise NodeNotFoundError(*missing)
        return self._version(name, number, node)

    def _all_versions(self, name: str) -> list[ModelVersion]:
        """Every version of ``name``, oldest first (its labels read once)."""
        labels = self._lg.labels(name)
        return [self._version(name, i, node, labels) for i, node in enumerate(self._versions(name), start=1)]


def _checked_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError("a registered model needs a name")
    return name


def _clauses(filter_string: str | None, *, allowed: Sequence[str]) -> list[Any]:
    """The clauses of a registry filter, each on one of ``allowed``'s attributes."""
    from . import mlflow_filter

    clauses = mlflow_filter.parse(filter_string)
    for c in clauses:
        if c.entity != "attributes" or c.key.lower() not in allowed:
            raise InvalidInputError(f"this filter can compare {' and '.join(allowed)} only, not {c.entity}.{c.key}")
    return clauses


def _matches(values: Mapping[str, Any], clauses: Sequence[Any]) -> bool:
    from .mlflow_filter import compare

    return all(compare(values.get(c.key.lower()), c.op, c.value) for c in clauses)
