"""Deployment to the Hugging Face Hub: a model repository in one commit, its model card, and
an optional Gradio Space that serves predictions. No MCP imports: server/deploy.py routes."""
