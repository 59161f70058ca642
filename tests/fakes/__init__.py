"""Local fake Kaggle and Hugging Face servers that the real clients talk to in tests."""
