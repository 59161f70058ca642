"""XGBoost through its native API, kept inside a model as its own ``ubj`` bytes (never pickled)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator


class XGBModel(BaseEstimator):
    """XGBoost through its native API, with early stopping and a wall-clock deadline.

    The booster is stored as XGBoost ``ubj`` bytes in the object's state, so skops never has to
    know XGBoost's classes.
    """

    def __init__(
        self,
        objective: str = "reg:squarederror",
        num_class: int = 0,
        n_estimators: int = 2000,
        learning_rate: float = 0.1,
        max_depth: int = 6,
        min_child_weight: float = 1.0,
        subsample: float = 1.0,
        colsample_bytree: float = 1.0,
        reg_lambda: float = 1.0,
        reg_alpha: float = 0.0,
        gamma: float = 0.0,
        max_bin: int = 256,
        early_stopping_rounds: int = 50,
        n_jobs: int = 2,
        random_state: int = 0,
    ) -> None:
        self.objective = objective
        self.num_class = num_class
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.reg_alpha = reg_alpha
        self.gamma = gamma
        self.max_bin = max_bin
        self.early_stopping_rounds = early_stopping_rounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "objective": self.objective,
            "eta": self.learning_rate,
            "max_depth": self.max_depth,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "lambda": self.reg_lambda,
            "alpha": self.reg_alpha,
            "gamma": self.gamma,
            "max_bin": self.max_bin,
            "tree_method": "hist",
            # Histograms of 32 nodes kept, not all: deep trees on many columns otherwise hold
            # tens of MB (the model is the same; only rebuilt histograms cost a little time).
            "max_cached_hist_node": 32,
            "nthread": self.n_jobs,
            "seed": self.random_state,
            "verbosity": 0,
        }
        if self.objective.startswith("multi:"):
            params["num_class"] = self.num_class
        return params

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        eval_set: tuple[Any, Any] | None = None,
        deadline: float | None = None,
    ) -> XGBModel:
        import time

        import xgboost as xgb

        # Quantised on the way in: the float copy a DMatrix keeps beside its histogram index
        # is never made (the same model, ~8 MB less per fit on 30k rows).
        train = xgb.QuantileDMatrix(
            X,
            label=np.asarray(y),
            weight=sample_weight,
            missing=np.nan,
            max_bin=self.max_bin,
            nthread=self.n_jobs,
        )
        evals = []
        if eval_set is not None:
            valid = xgb.QuantileDMatrix(
                eval_set[0],
                label=np.asarray(eval_set[1]),
                missing=np.nan,
                ref=train,
                nthread=self.n_jobs,
            )
            evals = [(valid, "v")]

        class _Deadline(xgb.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                return deadline is not None and time.monotonic() > deadline

        callbacks: list[Any] = [_Deadline()]
        if evals and self.early_stopping_rounds:
            callbacks.append(
                xgb.callback.EarlyStopping(rounds=self.early_stopping_rounds, save_best=True)
            )
        booster = xgb.train(
            self._params(),
            train,
            self.n_estimators,
            evals=evals,
            callbacks=callbacks,
            verbose_eval=False,
        )
        self.best_iteration_ = int(booster.num_boosted_rounds())
        self._set_booster(booster)
        return self

    def _set_booster(self, booster: Any) -> None:
        # The trained booster holds its training caches: a lean copy is loaded from its saved
        # bytes, and the bytes are made again only when the model is saved (``__getstate__``).
        import xgboost as xgb

        lean = xgb.Booster(params={"nthread": self.n_jobs})
        lean.load_model(booster.save_raw("ubj"))
        self._booster: Any = lean
        self.__dict__.pop("booster_raw_", None)

    def booster(self) -> Any:
        booster = getattr(self, "_booster", None)
        if booster is None:
            import xgboost as xgb

            booster = xgb.Booster(params={"nthread": self.n_jobs})
            booster.load_model(bytearray(self.booster_raw_))
            self._booster = booster
        return booster

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        booster = state.pop("_booster", None)
        if booster is not None:
            state["booster_raw_"] = bytes(booster.save_raw("ubj"))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._booster = None

    def raw_predict(self, X: Any) -> np.ndarray:
        # In place: no DMatrix copy of the rows is made.
        return np.asarray(self.booster().inplace_predict(X, missing=np.nan))

    @property
    def feature_importances_(self) -> np.ndarray:
        scores = self.booster().get_score(importance_type="total_gain")
        n = self.booster().num_features()
        out = np.zeros(n)
        for key, value in scores.items():
            index = int(key[1:]) if key.startswith("f") and key[1:].isdigit() else None
            if index is not None and index < n:
                out[index] = value
        total = out.sum()
        return out / total if total > 0 else out


class XGBClassifierModel(XGBModel):
    def predict_proba(self, X: Any) -> np.ndarray:
        raw = self.raw_predict(X)
        if raw.ndim == 1:
            return np.column_stack([1.0 - raw, raw])
        return raw

    def predict(self, X: Any) -> np.ndarray:
        return np.argmax(self.predict_proba(X), axis=1)


class XGBRegressorModel(XGBModel):
    def predict(self, X: Any) -> np.ndarray:
        return self.raw_predict(X)
