"""Qt item model over the catalogue's variants, and the proxy that filters and sorts them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)

from app.catalog import Catalog, Model, Variant
from app.catalog.fit import Fit, FitReport, assess
from app.catalog.hardware import Hardware
from app.catalog.installed import Conversion, InstallState, converted_model, install_state
from app.units import human_size

AnyIndex = QModelIndex | QPersistentModelIndex


class Column(IntEnum):
    MODEL = 0
    FORMAT = 1
    QUANT = 2
    BITS = 3
    GROUP = 4
    SIZE = 5
    FIT = 6
    STATUS = 7
    SOURCE = 8


HEADERS = {
    Column.MODEL: "Model",
    Column.FORMAT: "Format",
    Column.QUANT: "Quant / branch",
    Column.BITS: "Bits",
    Column.GROUP: "Group",
    Column.SIZE: "Size",
    Column.FIT: "Fits",
    Column.STATUS: "Status",
    Column.SOURCE: "Source",
}


# The Fits column's short words (the tooltip and the detail pane say the rest).
FIT_LABELS = {Fit.REMOTE: "remote"}


class Role(IntEnum):
    SORT = Qt.ItemDataRole.UserRole + 1
    VARIANT = Qt.ItemDataRole.UserRole + 2
    MODEL = Qt.ItemDataRole.UserRole + 3
    FIT = Qt.ItemDataRole.UserRole + 4
    SEARCH = Qt.ItemDataRole.UserRole + 5
    BADGE = Qt.ItemDataRole.UserRole + 6


@dataclass
class Row:
    model: Model
    variant: Variant
    fit: FitReport | None = None
    state: InstallState = InstallState.NOT_INSTALLED
    conversion: Conversion | None = None

    @property
    def status(self) -> str:
        """``Converted (Q4_K_M)`` for a converted GPTQ branch, else the install state; empty when not installed."""
        if self.conversion is not None:
            return f"Converted ({self.conversion.type_label})"
        return "" if self.state is InstallState.NOT_INSTALLED else self.state.value.capitalize()


class CatalogTableModel(QAbstractTableModel):
    """One row per variant. Hardware and install states arrive later (found off the GUI thread): run
    ``scan_install_states()`` on a worker and hand its result to ``apply_install_states``."""

    def __init__(self, catalog: Catalog, models_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._models_dir = models_dir
        self._rows = [Row(m, v) for m, v in catalog.variants()]
        self.hardware: Hardware | None = None
        # The free memory of the remote machines that answered, and their names (none until asked).
        self.remote_free = 0
        self.remote_names: tuple[str, ...] = ()

    def set_catalog(self, catalog: Catalog) -> None:
        """Show a reloaded catalogue (after an import or a removal), keeping the hardware verdicts and the
        install states known so far (a new model's come with the next ``scan_install_states``)."""
        known = {row.variant.id: (row.state, row.conversion) for row in self._rows}
        self.beginResetModel()
        self._rows = [Row(m, v) for m, v in catalog.variants()]
        for row in self._rows:
            row.state, row.conversion = known.get(row.variant.id, (InstallState.NOT_INSTALLED, None))
            row.fit = self._assess(row)
        self.endResetModel()

    # -- data updates -------------------------------------------------------
    def set_hardware(self, hardware: Hardware) -> None:
        self.hardware = hardware
        self._reassess()

    def set_remote_memory(self, free: int, names: tuple[str, ...]) -> None:
        """The remote machines that answered (``hearth rpc-server``s) and their free memory: a model too big
        here may fit split across this machine and them. ``free`` 0: this machine's verdicts alone."""
        self.remote_free, self.remote_names = free, names
        self._reassess()

    def _assess(self, row: Row) -> FitReport | None:
        if self.hardware is None:
            return None
        return assess(row.variant, self.hardware, self.remote_free, parameters=row.model.parameters,
                      remote_names=self.remote_names)

    def _reassess(self) -> None:
        for row in self._rows:
            row.fit = self._assess(row)
        self._column_changed(Column.FIT)

    def scan_install_states(self) -> Callable[[], list[tuple[str, InstallState, Any]]]:
        """A scan of the models folder to run off the GUI thread (it reads no Qt state)."""
        models_dir, variants = self._models_dir, [row.variant for row in self._rows]

        def scan() -> list[tuple[str, InstallState, Any]]:
            return [(v.id, install_state(models_dir, v), converted_model(models_dir, v)) for v in variants]
        return scan

    def apply_install_states(self, results: list[tuple[str, InstallState, Any]]) -> None:
        """Show what a scan found (on the GUI thread); rows added since keep their state."""
        by_id = {variant_id: (state, conversion) for variant_id, state, conversion in results}
        for row in self._rows:
            if row.variant.id in by_id:
                row.state, row.conversion = by_id[row.variant.id]
        self._column_changed(Column.STATUS)

    def _column_changed(self, column: Column) -> None:
        if self._rows:
            self.dataChanged.emit(self.index(0, column), self.index(len(self._rows) - 1, column))

    def row_of(self, variant_id: str) -> int:
        return next((i for i, r in enumerate(self._rows) if r.variant.id == variant_id), -1)

    def row_info(self, variant_id: str) -> Row:
        """The row of a variant: its model, fit and install state."""
        return self._rows[self.row_of(variant_id)]

    # -- Qt model interface -------------------------------------------------
    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and 0 <= section < len(Column):
            if role == Qt.ItemDataRole.DisplayRole:
                return HEADERS[Column(section)]
            if role == Qt.ItemDataRole.TextAlignmentRole and section in (Column.BITS, Column.SIZE):
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._rows)):
            return None
        row = self._rows[index.row()]
        column = Column(index.column())
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == Role.SORT:
            return self._sort_key(row, column)
        if role == Role.VARIANT:
            return row.variant
        if role == Role.MODEL:
            return row.model
        if role == Role.FIT:
            return row.fit.fit if row.fit else None
        if role == Role.SEARCH:
            v, m = row.variant, row.model
            words = [m.name, m.id, m.creator, m.architecture, v.repo, v.revision, v.quant or "", v.format,
                     m.source_label]
            return " ".join(words).lower()
        if role == Role.BADGE:
            if column == Column.FORMAT:
                return row.variant.format
            if column == Column.FIT and row.fit:
                return row.fit.fit.name.lower()
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (Column.BITS, Column.SIZE):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, row: Row, column: Column) -> str:
        v = row.variant
        match column:
            case Column.MODEL:
                return row.model.name
            case Column.FORMAT:
                return v.format.upper()
            case Column.QUANT:
                return v.quant or v.revision
            case Column.BITS:
                return str(v.bits)
            case Column.GROUP:
                if v.format == "gguf":
                    return "–"
                return "None" if v.group_size is None else str(v.group_size)
            case Column.SIZE:
                return human_size(v.size_bytes)
            case Column.FIT:
                return FIT_LABELS.get(row.fit.fit, row.fit.fit.value) if row.fit else "checking…"
            case Column.STATUS:
                # Not installed is the usual case: leave the cell quiet.
                return row.status
            case Column.SOURCE:
                return row.model.source_label
        return ""

    def _sort_key(self, row: Row, column: Column) -> Any:
        v = row.variant
        match column:
            case Column.BITS:
                return v.bits
            case Column.GROUP:
                return -1 if v.group_size is None else v.group_size
            case Column.SIZE:
                return v.size_bytes
            case Column.FIT:
                return list(Fit).index(row.fit.fit) if row.fit else len(Fit)
        return self._display(row, column).lower()

    def _tooltip(self, row: Row, column: Column) -> str | None:
        if column == Column.FIT and row.fit:
            return row.fit.reason
        if column == Column.MODEL:
            return f"{row.model.name} by {row.model.creator} · {row.variant.repo}"
        if column == Column.QUANT:
            return row.variant.label
        if column == Column.FORMAT and not row.variant.runnable:
            return "llama.cpp cannot load GPTQ as it is: Hearth converts the branch to GGUF on this machine"
        if column == Column.STATUS:
            if row.conversion is not None:
                return f"{row.status}: {row.conversion.path}"
            return row.state.value.capitalize()
        return None


class CatalogFilterProxy(QSortFilterProxyModel):
    """Search text, format, bits, size and "fits my machine" filters over the table model."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setSortRole(Role.SORT)
        self._text = ""
        self._format: str | None = None
        self._bits: int | None = None
        self._max_size: int | None = None
        self._fits_only = False

    def _refilter(self, **changes: object) -> None:
        self.beginFilterChange()
        for name, value in changes.items():
            setattr(self, f"_{name}", value)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_text(self, text: str) -> None:
        self._refilter(text=text.strip().lower())

    def set_format(self, fmt: str | None) -> None:
        self._refilter(format=fmt)

    def set_bits(self, bits: int | None) -> None:
        self._refilter(bits=bits)

    def set_max_size(self, size: int | None) -> None:
        self._refilter(max_size=size)

    def set_fits_only(self, on: bool) -> None:
        self._refilter(fits_only=on)

    def filterAcceptsRow(self, source_row: int, source_parent: AnyIndex) -> bool:
        model = self.sourceModel()
        index = model.index(source_row, 0, source_parent)
        variant: Variant = model.data(index, Role.VARIANT)
        if self._format and variant.format != self._format:
            return False
        if self._bits is not None and variant.bits != self._bits:
            return False
        if self._max_size is not None and variant.size_bytes > self._max_size:
            return False
        if self._fits_only and model.data(index, Role.FIT) not in (Fit.GOOD, Fit.TIGHT, Fit.REMOTE):
            return False
        if self._text:
            haystack: str = model.data(index, Role.SEARCH)
            return all(word in haystack for word in self._text.split())
        return True
