"""The catalogue as a tree (model, then its variants) over the filtered, sorted flat variant model."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, QPersistentModelIndex, QSize, Qt

from app.catalog import Model
from app.catalog.model import Variant
from app.ui.catalog.table_model import HEADERS, CatalogFilterProxy, Column, Role
from app.units import human_size

AnyIndex = QModelIndex | QPersistentModelIndex
_TOP = 0xFFFFFFFF  # internalId of a model row; a variant row holds its model row's number
ROW_HEIGHT = 30


class CatalogTreeModel(QAbstractItemModel):
    """Top-level rows are models (full name, source); their children are the variants the filters keep.

    Everything about a variant (text, badges, sort keys, tooltips) is read from the flat proxy, so
    the filters, sorting and install states stay in one place. The tree is rebuilt when the proxy's
    rows change; cell changes are forwarded as they come.
    """

    def __init__(self, proxy: CatalogFilterProxy, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._proxy = proxy
        self._groups: list[tuple[Model, list[int]]] = []
        self._rebuild()
        for signal in (proxy.modelReset, proxy.layoutChanged, proxy.rowsInserted, proxy.rowsRemoved):
            signal.connect(self._reset)
        proxy.dataChanged.connect(self._cells_changed)

    # -- structure ----------------------------------------------------------
    def _rebuild(self) -> None:
        groups: dict[str, tuple[Model, list[int]]] = {}
        for row in range(self._proxy.rowCount()):
            model: Model = self._proxy.index(row, 0).data(Role.MODEL)
            groups.setdefault(model.id, (model, []))[1].append(row)
        self._groups = list(groups.values())

    def _reset(self, *_args: object) -> None:
        self.beginResetModel()
        self._rebuild()
        self.endResetModel()

    def _cells_changed(self, *_args: object) -> None:
        if not self._groups:
            return
        last = len(Column) - 1
        self.dataChanged.emit(self.index(0, 0), self.index(len(self._groups) - 1, last))
        for group, (_model, rows) in enumerate(self._groups):
            parent = self.index(group, 0)
            self.dataChanged.emit(self.index(0, 0, parent), self.index(len(rows) - 1, last, parent))

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Sorting is the flat proxy's; the tree follows its order (models by their first variant)."""
        self._proxy.sort(column, order)

    # -- lookups ------------------------------------------------------------
    def model_at(self, index: AnyIndex) -> Model | None:
        if not index.isValid():
            return None
        group = index.row() if index.internalId() == _TOP else index.internalId()
        return self._groups[group][0] if group < len(self._groups) else None

    def variant_at(self, index: AnyIndex) -> Variant | None:
        proxy_index = self._proxy_index(index)
        return proxy_index.data(Role.VARIANT) if proxy_index is not None else None

    def index_of_variant(self, variant_id: str) -> QModelIndex:
        for group, (_model, rows) in enumerate(self._groups):
            for position, row in enumerate(rows):
                if self._proxy.index(row, 0).data(Role.VARIANT).id == variant_id:
                    return self.index(position, 0, self.index(group, 0))
        return QModelIndex()

    def _proxy_index(self, index: AnyIndex, column: int | None = None) -> QModelIndex | None:
        if not index.isValid() or index.internalId() == _TOP:
            return None
        rows = self._groups[index.internalId()][1]
        if index.row() >= len(rows):
            return None
        return self._proxy.index(rows[index.row()], index.column() if column is None else column)

    # -- Qt model interface -------------------------------------------------
    def index(self, row: int, column: int, parent: AnyIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        if column < 0 or column >= len(Column) or row < 0:
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, _TOP) if row < len(self._groups) else QModelIndex()
        if parent.internalId() != _TOP or parent.row() >= len(self._groups):
            return QModelIndex()
        if row >= len(self._groups[parent.row()][1]):
            return QModelIndex()
        return self.createIndex(row, column, parent.row())

    def parent(self, index: AnyIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid() or index.internalId() == _TOP:
            return QModelIndex()
        return self.createIndex(int(index.internalId()), 0, _TOP)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        if not parent.isValid():
            return len(self._groups)
        if parent.internalId() == _TOP and parent.column() == 0 and parent.row() < len(self._groups):
            return len(self._groups[parent.row()][1])
        return 0

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return len(Column)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and section == Column.MODEL:
            return "Model / variant"
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(
                Column):
            return HEADERS[Column(section)]
        return self._proxy.headerData(section, orientation, role)

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.SizeHintRole:
            return QSize(-1, ROW_HEIGHT)
        if index.internalId() == _TOP:
            return self._model_data(index, role)
        proxy_index = self._proxy_index(index)
        if proxy_index is None:
            return None
        if index.column() == Column.MODEL and role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            variant: Variant = proxy_index.data(Role.VARIANT)
            name = variant.quant or variant.revision
            if role == Qt.ItemDataRole.DisplayRole:
                return name
            # The full quant or branch name first: a long branch may be elided in the cell.
            return f"{name} ({variant.label})\n{proxy_index.data(role)}"
        return proxy_index.data(role)

    def _model_data(self, index: AnyIndex, role: int) -> Any:
        if index.row() >= len(self._groups):
            return None
        model, rows = self._groups[index.row()]
        column = Column(index.column())
        if role == Role.MODEL:
            return model
        if role == Qt.ItemDataRole.DisplayRole:
            variants = [self._proxy.index(r, 0).data(Role.VARIANT) for r in rows]
            if column == Column.MODEL:  # the row spans the table: the full name, then a summary
                formats = " and ".join(f.upper() for f in ("gguf", "gptq") if any(v.format == f for v in variants))
                count = f"{len(rows)} {formats} variant{'s' if len(rows) != 1 else ''}"
                return f"{model.name}   ·   {model.creator} · {model.parameters_label} · {count} · {model.source_label}"
            if column == Column.FORMAT:
                return " · ".join(f.upper() for f in ("gguf", "gptq") if any(v.format == f for v in variants))
            if column == Column.QUANT:
                return f"{len(rows)} variant{'s' if len(rows) != 1 else ''}"
            if column == Column.SIZE and variants:
                low, high = min(v.size_bytes for v in variants), max(v.size_bytes for v in variants)
                return human_size(low) if low == high else f"{human_size(low)} – {human_size(high)}"
            if column == Column.SOURCE:
                return model.source_label
            return ""
        if role == Qt.ItemDataRole.ToolTipRole and column == Column.MODEL:
            source = f" · imported from {model.imported_from}" if model.imported_from else ""
            return f"{model.name} by {model.creator} · {model.parameters_label} · {model.architecture}{source}"
        if role == Qt.ItemDataRole.FontRole and column == Column.MODEL:
            from PySide6.QtGui import QFont

            font = QFont()
            font.setBold(True)
            return font
        return None
