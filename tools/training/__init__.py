"""Training: planning, fitting, evaluating and saving models; predicting with them."""
