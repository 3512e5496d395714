"""lineage.autolog(): scikit-learn fits and predictions recorded without tracking code."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import lineage
from lineage import fluent


@pytest.fixture
def project(fluent_project: Path) -> Iterator[Path]:
    """The fluent project, with autolog switched off after each test (before its runs end)."""
    yield fluent_project
    lineage.autolog(disable=True)


def _data(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def test_a_fit_records_a_run_with_params_data_model_and_score(project: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    lineage.autolog()
    X, y = _data()
    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=0.5))]).fit(X, y)
    lg = fluent.get_lineage()
    (run,) = lg.runs()
    assert run.attrs["status"] == "finished" and run.name == "Pipeline"
    assert run.attrs["params"]["clf__C"] == "0.5" and run.attrs["params"]["scale__with_mean"] == "True"
    assert run.attrs["metrics"]["training_score"] == pytest.approx(pipe.score(X, y))
    # MLflow's tags and in-sample metrics, which scripts read by name
    assert run.attrs["tags"]["estimator_class"] == "sklearn.pipeline.Pipeline"
    assert run.attrs["tags"]["estimator_name"] == "Pipeline"
    from sklearn.metrics import f1_score, roc_auc_score

    assert run.attrs["metrics"]["training_f1_score"] == pytest.approx(f1_score(y, pipe.predict(X), average="weighted"))
    assert run.attrs["metrics"]["training_roc_auc"] == pytest.approx(roc_auc_score(y, pipe.predict_proba(X)[:, 1]))
    assert {"training_accuracy_score", "training_precision_score", "training_recall_score",
            "training_log_loss"} <= set(run.attrs["metrics"])
    # (roc_auc_score fits a LabelEncoder inside: not a fit of the user's, no run or model)
    (model,) = lg.nodes(kind="model")
    assert model.name == "Pipeline" and model.attrs["artifact_path"] == "model"
    uses = lg.which_data(model)
    assert [u.role for u in uses] == ["training", "training"]
    assert {u.node.attrs["format"] for u in uses} == {"ndarray"}
    # the steps' own fits are part of the pipeline's, not runs of their own
    assert len(lg.nodes(kind="model")) == 1


def test_fits_inside_an_active_run_log_to_it_and_keep_column_names(project: Path) -> None:
    import pandas as pd
    from sklearn.tree import DecisionTreeClassifier

    lineage.autolog()
    X, y = _data()
    df = pd.DataFrame(X, columns=["age", "income", "debt"])
    with lineage.start_run(run_name="mine") as run:
        lineage.log_param("max_depth", 2)  # the user's value wins; autolog does not clash
        DecisionTreeClassifier(max_depth=2).fit(df, pd.Series(y, name="default"))
    lg = fluent.get_lineage()
    assert [r.name for r in lg.runs()] == ["mine"]
    uses = lg.which_data(lg.get("DecisionTreeClassifier"))
    assert sorted(str(u.node.attrs["columns"]) for u in uses) == ["['age', 'income', 'debt']", "['default']"]
    assert lineage.get_run(run.info.run_id).data.params["max_depth"] == "2"


def test_grid_search_records_the_best_run_and_child_runs(project: Path) -> None:
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    lineage.sklearn.autolog(max_tuning_runs=3)
    X, y = _data()
    search = GridSearchCV(SVC(), {"C": [0.1, 1, 10], "kernel": ["linear", "rbf"]}, cv=3).fit(X, y)
    lg = fluent.get_lineage()
    runs = lg.runs()
    parent = next(r for r in runs if r.name == "GridSearchCV")
    children = [r for r in runs if r.attrs.get("parent_run") == parent.id]
    assert len(children) == 3 and len(runs) == 4
    assert parent.attrs["params"]["best_C"] == repr(search.best_params_["C"])
    assert parent.attrs["metrics"]["best_cv_score"] == pytest.approx(search.best_score_)
    assert {c.attrs["metrics"]["rank_test_score"] for c in children} <= {1.0, 2.0, 3.0}
    assert {m.attrs["artifact_path"] for m in lg.nodes(kind="model")} == {"model", "best_estimator"}


def test_predictions_are_logged_in_bulk_with_request_ids(project: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    lineage.autolog(log_predictions=True)
    X, y = _data()
    clf = LogisticRegression().fit(X, y)
    with lineage.request_ids([f"req-{i}" for i in range(5)]):
        out = clf.predict(X[:5])
    lineage.flush_async_logging()  # predictions are written beside the predict
    lg = fluent.get_lineage()
    pred = lg.get("request:req-3")
    assert pred.kind == "prediction" and pred.attrs["output"] == int(out[3])
    assert lg.get(pred.attrs["model"]).name == "LogisticRegression"
    clf.predict_proba(X[:2])
    lineage.flush_async_logging()
    assert len(lg.nodes(kind="prediction")) == 7


def test_a_failing_fit_raises_and_its_run_fails(project: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    lineage.autolog()
    with pytest.raises(ValueError):
        LogisticRegression().fit([[1.0], [2.0]], [0, 0])  # one class only
    lg = fluent.get_lineage()
    (run,) = lg.runs()
    assert run.attrs["status"] == "failed"
    # what it was asked to do, and on which data: the params and inputs stay
    assert run.attrs["params"]["C"] == "1.0"
    assert [role for _, role in lg.store.used_by(run.id) if role == "training"] == ["training", "training"]
    assert lg.nodes(kind="model") == []


def test_disable_restores_scikit_learn(project: Path) -> None:
    from sklearn.linear_model import LinearRegression

    original = LinearRegression.fit
    lineage.autolog()
    assert LinearRegression.fit is not original
    lineage.autolog(disable=True)
    assert LinearRegression.fit is original
    X, y = _data()
    LinearRegression().fit(X, y)
    assert fluent.get_lineage().runs() == []


def test_a_recording_problem_warns_and_never_breaks_the_fit(project: Path) -> None:
    from sklearn.linear_model import LinearRegression

    lineage.autolog()
    X, y = _data()
    est = LinearRegression()
    est.callback = lambda: None  # pickle cannot serialize it, so the model cannot be logged
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = est.fit(X, y)
    assert hasattr(model, "coef_")
    assert any("lineage autolog could not record" in str(w.message) for w in caught)
    (run,) = fluent.get_lineage().runs()
    assert run.attrs["status"] == "finished"  # our gap does not fail the user's run


def test_verbs_that_take_a_model_read_the_estimators_name_as_the_model(project: Path) -> None:
    """Autolog names a run and the model it fits after the estimator, so every verb
    given "LogisticRegression" said it was ambiguous, though only the model can be
    audited, promoted, loaded or described; and the `model:NAME` the error asks
    for found no history."""
    from sklearn.linear_model import LogisticRegression

    lineage.autolog()
    X, y = _data()
    LogisticRegression().fit(X, y)
    LogisticRegression(C=0.5).fit(X, y)
    lg = fluent.get_lineage()
    newest = lg.history("model:LogisticRegression")[-1]
    assert [n.kind for n in lg.history("model:LogisticRegression")] == ["model", "model"]
    assert [n.kind for n in lg.history("run:LogisticRegression")] == ["run", "run"]
    assert lg.describe_model("LogisticRegression")["class"].endswith("LogisticRegression")
    assert lg.audit("LogisticRegression").to_dict()["subject"]["id"] == newest.id
    lg.promote("LogisticRegression", "production")
    assert lg.labels("LogisticRegression")["production"].id == newest.id
    assert lg.load_model("LogisticRegression").C == 0.5
    assert len(lg.model_history("LogisticRegression").versions) == 2
    with pytest.raises(lineage.InvalidInputError, match="is a run, not a model"):
        lg.describe_model("run:LogisticRegression")
    with pytest.raises(lineage.AmbiguousIdError):  # a verb that takes any kind still asks
        lg.get("LogisticRegression")


def test_inside_a_facade_run_the_fluent_calls_and_autolog_log_to_it(project: Path) -> None:
    """The README's ``with lg.start_run("x"):`` and MLflow's habits in one cell:
    ``lineage.log_metric`` had started a run of its own (left running after the
    block) and autolog a third, so the model's trace did not lead to the run the
    user named."""
    from sklearn.linear_model import LogisticRegression

    lg = fluent.get_lineage()
    with lg.start_run("by hand", params={"C": 1.0}) as run:
        assert lineage.active_run().info.run_id == run.id.split(":", 1)[1]
        lineage.log_metric("accuracy", 0.93)
        lineage.autolog()
        X, y = _data()
        model = LogisticRegression().fit(X, y)
    assert lineage.active_run() is None  # ended with its block, both faces
    assert [n.name for n in lg.runs()] == ["by hand"]
    recorded = lg.get(run.id)
    assert recorded.attrs["status"] == "finished" and recorded.attrs["metrics"]["accuracy"] == 0.93
    made = [o for rel, _, o in lg.run_links(recorded) if rel == "was_generated_by"]
    assert [m.kind for m in made] == ["model"] and lg.load_model(made[0]).coef_.tolist() == model.coef_.tolist()
    # a run of another store is not the fluent API's
    other = lineage.open(project / "elsewhere" / "lineage.db")
    with other.start_run("elsewhere"):
        assert lineage.active_run() is None


def test_lineages_own_fits_are_not_recorded_by_autolog(project: Path) -> None:
    """insights() fits forests of its own: with autolog on they became five runs and
    five models per call, and inside a user's run their params and arrays polluted it."""
    lineage.autolog()
    lg = fluent.get_lineage()
    for i, c in enumerate([0.1, 0.3, 1.0, 3.0, 10.0, 30.0]):
        with lineage.start_run(run_name=f"trial-{i}"):
            lineage.log_param("C", c)
            lineage.log_metric("score", 0.5 + 0.01 * i)
    before = {kind: len(lg.nodes(kind=kind)) for kind in ("run", "model", "dataset")}
    lg.insights("score")
    with lineage.start_run(run_name="user-analysis") as mine:
        lg.insights("score")
    after = {kind: len(lg.nodes(kind=kind)) for kind in ("run", "model", "dataset")}
    assert after == {**before, "run": before["run"] + 1}  # only the user's own run
    run = lineage.get_run(mine.info.run_id)
    assert run.data.params == {} and run.data.metrics == {}
    assert lg.which_data(lg.get(mine.info.run_id)) == []


def test_lineages_own_scoring_of_a_model_is_not_logged_as_predictions(project: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    from lineage.describe import permutation

    lineage.autolog(log_predictions=True)
    X, y = _data()
    clf = LogisticRegression().fit(X, y)
    permutation(clf, X, y, n_repeats=2)  # (predicts many times, all of it lineage's work)
    clf.predict(X[:3])  # the user's own predict is still logged
    lineage.flush_async_logging()
    assert len(fluent.get_lineage().nodes(kind="prediction")) == 3


def test_a_fit_on_a_sparse_matrix_is_recorded_whole(project: Path) -> None:
    """TF-IDF and one-hot output is scipy.sparse: it could not be hashed, and that one
    failure dropped the fit's params, model and metrics too."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    docs = ["good movie", "bad movie", "great film", "awful film", "good plot", "bad plot"] * 3
    labels = [1, 0, 1, 0, 1, 0] * 3
    X = TfidfVectorizer().fit_transform(docs)  # (fit outside autolog: the vectorizer is not the model here)
    lineage.autolog()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing left unrecorded
        with lineage.start_run(run_name="sparse-fit") as active:
            LogisticRegression(C=2.0).fit(X, labels)
    lg = fluent.get_lineage()
    run = lineage.get_run(active.info.run_id)
    assert run.data.params["C"] == "2.0" and "training_accuracy_score" in run.data.metrics
    (model,) = lg.nodes(kind="model")
    data = {u.node.attrs["format"]: u.node for u in lg.which_data(model)}
    assert set(data) == {"sparse", "list"}
    assert data["sparse"].attrs["rows"] == 18 and data["sparse"].attrs["columns"] == X.shape[1]


def test_predictions_on_sparse_input_are_recorded(project: Path) -> None:
    """``predict`` on a scipy.sparse matrix failed in autolog's background writer
    ("cannot split a csr_matrix into rows"), and the predictions were lost."""
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    from lineage.hashing import row_digests

    X, y = _data()
    X = sp.csr_matrix(np.where(X > 0, X, 0.0))
    lineage.autolog(log_predictions=True)
    clf = LogisticRegression().fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing left unrecorded
        with lineage.request_ids([f"sp-{i}" for i in range(4)]):
            out = clf.predict(X[:4])
        lineage.flush_async_logging()
    lg = fluent.get_lineage()
    preds = [lg.get(f"request:sp-{i}") for i in range(4)]
    assert [p.attrs["output"] for p in preds] == out.tolist()
    assert [p.attrs["input_digest"] for p in preds] == row_digests(X[:4].toarray())  # as the dense rows


def test_a_pipelines_predictions_on_text_are_recorded(project: Path) -> None:
    """A Pipeline's ``predict`` is sklearn's `available_if` descriptor, not a function:
    autolog left it alone, so Pipeline(TfidfVectorizer, LogisticRegression) recorded
    its fit and never its predictions."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    docs = ["good movie", "bad movie", "great film", "awful film", "good plot", "bad plot"] * 3
    lineage.autolog(log_predictions=True)
    pipe = Pipeline([("tfidf", TfidfVectorizer()), ("clf", LogisticRegression())]).fit(docs, [1, 0] * 9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with lineage.request_ids(["t-0", "t-1"]):
            out = pipe.predict(["a good film", "an awful plot"])
        lineage.flush_async_logging()
    lg = fluent.get_lineage()
    pred = lg.get("request:t-1")
    assert pred.attrs["output"] == int(out[1]) and lg.get(pred.attrs["model"]).name == "Pipeline"
    assert len(lg.nodes(kind="prediction")) == 2  # the pipeline's, not its last step's too
    assert not hasattr(Pipeline([("tfidf", TfidfVectorizer())]), "predict")  # (still only when the last step has one)


def test_predictions_the_writer_cannot_record_are_named_each_time(project: Path) -> None:
    """A failure in the background writer is a one-line warning naming what was not
    recorded, every time (Python shows a warning once per line of code by default,
    and every one came from the same line of the writer), and a ``predictions_dropped``
    event when the store still takes writes."""
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    lineage.autolog(log_predictions=True)
    clf = LogisticRegression().fit(X, y)
    lg = fluent.get_lineage()
    lg.store.conn.execute("CREATE TRIGGER no_predictions BEFORE INSERT ON predictions "
                          "BEGIN SELECT RAISE(ABORT, 'the disk said no'); END")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # (Python's own filter: once per place)
        clf.predict(X[:3])
        lineage.flush_async_logging()
        clf.predict(X[:3])
        lineage.flush_async_logging()
    lost = [str(w.message) for w in caught if "did not record" in str(w.message)]
    assert len(lost) == 2, [str(w.message) for w in caught]
    assert lost[0].startswith("lineage autolog did not record 3 predictions of LogisticRegression (model:")
    assert "the disk said no" in lost[0] and "\n" not in lost[0]
    lg.store.conn.execute("DROP TRIGGER no_predictions")
    dropped = [e.payload for e in lg.store.events() if e.type == "predictions_dropped"]
    assert [(d["rejected"], d["source"]) for d in dropped] == [(3, "autolog")] * 2
    assert lg.nodes(kind="prediction") == []


def test_one_part_that_cannot_be_recorded_drops_only_itself(project: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    class ArrayLike:  # scikit-learn reads it through np.asarray; lineage cannot hash it
        def __init__(self, a: np.ndarray) -> None:
            self.a = a

        def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
            return self.a

    lineage.autolog()
    X, y = _data()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LogisticRegression(C=0.25).fit(ArrayLike(X), y)
    said = [str(w.message) for w in caught if "lineage autolog" in str(w.message)]
    assert len(said) == 1 and "the training data X of the fit of LogisticRegression" in said[0]
    lg = fluent.get_lineage()
    (run,) = lg.runs()
    assert run.attrs["params"]["C"] == "0.25" and "training_score" in run.attrs["metrics"]
    (model,) = lg.nodes(kind="model")
    assert [u.node.attrs["format"] for u in lg.which_data(model)] == ["ndarray"]  # y is kept


def test_a_name_given_to_data_autolog_saw_first_is_its_name(project: Path) -> None:
    """The notebook order: fit (autolog records X unnamed), then name X. The name was
    kept only as an alias: the node returned, diagrams and audits said "dataset"."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    lineage.autolog()
    X, y = _data()
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    LogisticRegression().fit(frame, y)
    lg = fluent.get_lineage()
    (unnamed_x,) = [n for n in lg.nodes(kind="dataset") if n.attrs["format"] == "dataframe"]
    assert unnamed_x.name is None
    named = lg.log_dataset(frame, name="iris_X")
    assert named.id == unnamed_x.id and named.name == "iris_X"  # same bytes, same node, the name given
    assert lg.get(named.id).name == "iris_X" and lg.get("iris_X").name == "iris_X"
    assert [n.name for n in lg.nodes(kind="dataset", name="iris_X")] == ["iris_X"]
    model = lg.get("model:LogisticRegression")
    assert "iris_X" in {n.name for n in lg.trace(model).nodes()}
    assert "iris_X" in {u.node.name for u in lg.which_data(model)}
    assert "iris_X" in str(lg.trace(model)) and "iris_X" in lg.trace(model)._repr_html_()  # (the views)
    assert "iris_X" in {r.name for r in lg.impact(named).nodes() if r.kind == "dataset"}
    # a second name is a second name (an alias); the first stays the one shown
    assert lg.log_dataset(frame, name="features").name == "iris_X"
    assert lg.aliases(named.id) == ["iris_X", "features"]
    assert lg.verify().ok
