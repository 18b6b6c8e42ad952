"""Evaluation: the per-layer model, the study's plan search, the study and its report.

Stage: evaluation, after the flow model and the schedule (see docs/design.md).

- :mod:`.per_layer`: ``evaluate(model, plan, fabric, mode, ...)`` and :class:`Evaluation`;
- :mod:`.records`: the study's named records (:class:`System`, :class:`Choice`, :class:`StudyResult`);
- :mod:`.search`: which plans fit, the alpha-beta screen, the full evaluation;
- :mod:`.study`: the Lite-GPU versus H100 study (``ocsnet compare``);
- :mod:`.report`: tables, figures and ``report.md`` from a finished study.
"""

from __future__ import annotations

from .per_layer import FIDELITIES, MODES, CollectiveTime, Evaluation, evaluate
from .records import Choice, StudyResult, System
from ..tables import format_table
from .report import summary_table, write_report
from .study import DEFAULT_STUDY, run_study, study_config

__all__ = ["evaluate", "Evaluation", "CollectiveTime", "FIDELITIES", "MODES", "System", "Choice",
           "StudyResult", "run_study", "study_config", "DEFAULT_STUDY", "write_report", "summary_table",
           "format_table"]
