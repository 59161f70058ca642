"""Deep-learning task types: images, detection, text, sequence-to-sequence and causal LMs.

The flow, each step a plain function with typed inputs and outputs (no MCP here):

1. ``layouts.detect_layout(path)`` / ``detect_frame_layout(frame)`` -> ``DeepLayout``
2. ``planner.plan_deep(layout, DeepRequest(...))`` -> ``DeepPlan`` (every choice with its reason)
3. ``prepare.prepare_input(layout, plan, folder / "input")`` writes the scripts' input folder
4. ``render.render(plan, folder, input_dir)`` copies the family's template script and writes
   ``config.json`` -> ``RenderedRun`` (what a runtime ships)
5. ``dryrun.dry_run(run, sandbox)`` proves it in the local sandbox -> ``DryRunReport``
6. ``predict.predict_folder(model_dir, inputs)`` -> ``DeepPredictions``

Steps 1-4 need no torch; 5 needs it in the sandbox's Python and 6 in this one (the ``deep``
extra).
"""
