"""Reports from sweep stores: number and table formatting (format), exact tests and
intervals (stats), figures, the paper-table report (sweep_report) and the operator study's
paired report (operator_report)."""

from deattack.reports.operator_report import build_operator_report
from deattack.reports.sweep_report import build_report

__all__ = ["build_operator_report", "build_report"]
