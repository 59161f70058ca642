"""The AutoML benchmark: our engine against FLAML, XGBoost and HistGradientBoosting on offline data."""
