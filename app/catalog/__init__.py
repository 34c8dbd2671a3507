"""The model catalogue: what can be downloaded, in which variants, and what each needs."""

from app.catalog.loader import CatalogError, load_catalog
from app.catalog.model import Catalog, Model, Variant

__all__ = ["Catalog", "CatalogError", "Model", "Variant", "load_catalog"]
