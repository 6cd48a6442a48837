"""Admin forms of the catalogue: the product CSV import and the category form."""

from __future__ import annotations

import csv
import datetime
import io

from django import forms
from django.utils.translation import gettext_lazy as _

from catalog.exceptions import CatalogInvalid
from catalog.models import PATH_SEPARATOR, Category
from catalog.services import MAX_ITEMS

IMPORT_PERMISSIONS = ("catalog.add_product", "catalog.change_product")
CSV_COLUMNS = (
    "sku",
    "name",
    "category",
    "new_arrival",
    "arrival_date",
    "excluded_from_earning",
    "excluded_from_redemption",
    "is_active",
)
REQUIRED_COLUMNS = ("sku", "name")
BOOLEAN_COLUMNS = ("new_arrival", "excluded_from_earning", "excluded_from_redemption", "is_active")
TRUE = frozenset({"1", "true", "yes"})
FALSE = frozenset({"0", "false", "no"})
MAX_FILE_SIZE = 10 * 1024 * 1024


class ProductCsvImportForm(forms.Form):
    """Parses the file into ``catalog_upsert`` items; ``products`` and ``lines`` (the file line of each item)
    are set once the form is valid. ``add_upsert_error`` turns the service's item errors into line errors."""

    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "UTF-8, comma-separated, with a header row. Columns: %(columns)s (sku and name required). "
            "Yes/no columns take 1/0, true/false or yes/no; dates are YYYY-MM-DD. Category is a category code."
        )
        % {"columns": ", ".join(CSV_COLUMNS)},
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_FILE_SIZE:
            raise forms.ValidationError(_("The file is larger than 10 MB."))
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise forms.ValidationError(_("The file is not UTF-8 text.")) from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [name.strip().lower() for name in reader.fieldnames or []]
        missing = [name for name in REQUIRED_COLUMNS if name not in header]
        unknown = [name for name in header if name not in CSV_COLUMNS]
        if missing or unknown:
            raise forms.ValidationError(
                _("The header row must name the columns %(columns)s (missing: %(missing)s; unknown: %(unknown)s).")
                % {
                    "columns": ", ".join(CSV_COLUMNS),
                    "missing": ", ".join(missing) or "—",
                    "unknown": ", ".join(unknown) or "—",
                }
            )
        reader.fieldnames = header
        self.products: list[dict] = []
        self.lines: list[int] = []
        errors: list[str] = []
        try:
            for row in reader:
                if None in row:
                    errors.append(_line_error(reader.line_num, None, _("more values than columns")))
                    continue
                if not any((value or "").strip() for value in row.values()):
                    continue  # a blank line
                product, row_errors = _product_from_row(row)
                errors += [_line_error(reader.line_num, column, message) for column, message in row_errors]
                self.products.append(product)
                self.lines.append(reader.line_num)
                if len(self.products) > MAX_ITEMS:
                    raise forms.ValidationError(_("At most %(limit)s products per file.") % {"limit": MAX_ITEMS})
        except csv.Error as error:
            raise forms.ValidationError(
                _("Line %(line)s: %(error)s") % {"line": reader.line_num, "error": error}
            ) from None
        if errors:
            raise forms.ValidationError(errors)
        if not self.products:
            raise forms.ValidationError(_("The file has no products."))
        return upload

    def add_upsert_error(self, error: CatalogInvalid) -> None:
        located = []
        for key, items in error.fields.items():
            _kind, index, *column = key.split(".")
            line = self.lines[int(index)]
            located += [(line, _line_error(line, column[0] if column else None, item["message"])) for item in items]
        located.sort(key=lambda pair: pair[0])
        self.add_error("file", [message for _line, message in located] or [error.message])


def _line_error(line: int, column: str | None, message) -> str:
    if column is None:
        return _("Line %(line)s: %(message)s") % {"line": line, "message": message}
    return _("Line %(line)s, %(column)s: %(message)s") % {"line": line, "column": column, "message": message}


def _product_from_row(row: dict[str, str | None]) -> tuple[dict, list[tuple[str, str]]]:
    product: dict = {}
    errors: list[tuple[str, str]] = []
    for column, raw in row.items():
        value = (raw or "").strip()
        if column in BOOLEAN_COLUMNS:
            if value == "":
                continue  # the service's default
            if value.lower() in TRUE:
                product[column] = True
            elif value.lower() in FALSE:
                product[column] = False
            else:
                errors.append((column, _("expected 1/0, true/false or yes/no, got “%(value)s”") % {"value": value}))
        elif column == "arrival_date":
            if value == "":
                continue
            try:
                product[column] = datetime.date.fromisoformat(value)
            except ValueError:
                errors.append((column, _("expected a date as YYYY-MM-DD, got “%(value)s”") % {"value": value}))
        else:
            product[column] = value or None
    return product, errors


class CategoryForm(forms.ModelForm):
    """The admin's category form; saved through ``catalog_upsert``, which recomputes the paths below it."""

    class Meta:
        model = Category
        fields = ["code", "name", "parent"]

    def clean_parent(self):
        parent = self.cleaned_data["parent"]
        category = self.instance
        moves_under_itself = parent is not None and (
            parent.pk == category.pk or parent.path.startswith(f"{category.path}{PATH_SEPARATOR}")
        )
        if category.pk is not None and moves_under_itself:
            raise forms.ValidationError(_("A category cannot be placed under itself or its descendants."))
        return parent
