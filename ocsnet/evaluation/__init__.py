"""Evaluation: the per-layer model, the study's plan search, the study and its report.

Stage: evaluation, after the flow model and the schedule (see docs/design.md).

- :mod:`.options`: :class:`EvalOptions`, the options of one evaluation;
- :mod:`.per_layer`: ``evaluate(model, plan, fabric, mode, options)`` and :class:`Evaluation`;
- :mod:`.timing`: the collective timing helpers of ``evaluate``;
- :mod:`.records`: the study's named records (:class:`System`, :class:`Choice`, :class:`StudyResult`);
- :mod:`.search`: which plans fit, the alpha-beta screen, the full evaluation;
- :mod:`.study`: the Lite-GPU versus H100 study (``ocsnet compare``);
- :mod:`.report`: tables, figures and ``report.md`` from a finished study.
"""

from ..lazy import exports

__all__, __getattr__, __dir__ = exports(__name__, {
    "evaluate": "per_layer", "Evaluation": "per_layer", "CollectiveTime": "per_layer",
    "EvalOptions": "options",
    "System": "records", "Choice": "records", "StudyResult": "records", "Screened": "records",
    "SweepSchedule": "records",
    "run_study": "study", "study_config": "study", "DEFAULT_STUDY": "config",
    "write_report": "report", "summary_table": "report",
})
